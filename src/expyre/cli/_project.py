"""Which project an ``xpr`` command works on: its root, its config and its jobs database."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

import click

from expyre.config import ConfigError, ProjectConfig, find_root, load_config

if TYPE_CHECKING:
    from expyre.jobsdb import JobsDB

__all__ = ["Project"]

DB_NAME = "jobs.db"


class Project:
    """The project (config + database) a command works on, opened only when needed.

    Parameters
    ----------
    root : str, optional
        Project root; default: ``$EXPYRE_ROOT``, the nearest ``_expyre`` upwards, ``~/.expyre``.
    dbfile : str, optional
        A project's ``jobs.db`` (the reference ``xpr``'s ``--dbfile``); its directory is the root.
    """

    def __init__(self, root: str | None = None, dbfile: str | None = None) -> None:
        if dbfile is not None:
            path = Path(dbfile).expanduser().resolve()
            if path.name != DB_NAME:
                # job directories and the config are found next to the database, so only a
                # project's own jobs.db identifies a project
                raise click.BadParameter(
                    f"{dbfile!r} is not named {DB_NAME}; give the jobs.db inside a project "
                    "root (e.g. _expyre/jobs.db), or use --root DIR",
                    param_hint="--dbfile",
                )
            if root is not None and Path(root).resolve() != path.parent:
                raise click.BadParameter(
                    f"--root {root} and --dbfile {dbfile} name different projects; give one",
                    param_hint="--dbfile",
                )
            root = str(path.parent)
        self.root = Path(root).resolve() if root else find_root()
        self._db: JobsDB | None = None

    @property
    def db_path(self) -> Path:
        return self.root / DB_NAME

    def config(self) -> ProjectConfig:
        try:
            return load_config(self.root)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc

    def require_db(self) -> Path:
        """The database path; a clear error (and nothing created) when there is none."""
        if not self.db_path.exists():
            raise click.ClickException(
                f"no jobs database at {self.db_path}: this is not an expyre project (no "
                "_expyre directory here or above, EXPYRE_ROOT unset, and no jobs in "
                "~/.expyre); cd into a project, or pass --root DIR / --dbfile FILE"
            )
        # before any command reads rows: a copied project lets go of the original's queue
        # entries and remote directories first (expyre.projectid), so nothing shown or
        # done here refers to them
        try:
            _ = self.db().project_id
        except sqlite3.OperationalError as exc:
            if "readonly" not in str(exc).lower():
                raise
            # someone else's project, opened to look at: nothing of it is changed from here
        return self.db_path

    def db(self) -> JobsDB:
        if self._db is None:
            from expyre.jobsdb import JobsDB  # listing reads without it (read-only, no lock)

            if not self.db_path.exists():
                self.require_db()  # the error naming what is missing
            self._db = JobsDB(self.db_path)
        return self._db
