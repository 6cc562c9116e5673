"""The jobs database as expyre-wfl 0.1.6 showed it: ``expyre.config.db``.

Scripts written for 0.1.6 read and edit jobs through ``expyre.config.db``: ``jobs(...)``
to select (regular expressions on id, name and system; statuses or status groups),
``add``, ``update``, ``remove`` and ``unlock``. :class:`LegacyJobsDB` offers those methods
on top of this project's :class:`expyre.jobsdb.JobsDB`, translating 0.1.6's columns
(``from_dir`` is the stage directory, ``remote_status`` the queue's state,
``creation_time``/``status_time`` the creation and last-change times). Every change still
goes through the database's rules: a status change must be a legal transition, so a
script cannot, say, mark a running job processed behind its driver's back.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from typing import Any

from expyre.jobsdb import (
    ALLOWED_TRANSITIONS,
    RESETTABLE_STATES,
    STATES,
    IllegalTransition,
    JobsDB,
)

__all__ = ["LegacyJobsDB"]

# 0.1.6's column -> ours (the others have the same name)
_COLUMN_NAMES = {"from_dir": "stage_dir", "remote_status": "queue_state"}
_LEGACY_COLUMNS = (
    "id",
    "name",
    "from_dir",
    "status",
    "system",
    "remote_id",
    "remote_status",
    "creation_time",
    "status_time",
)


class LegacyJobsDB:
    """expyre-wfl 0.1.6's ``JobsDB`` methods over this project's jobs database.

    Parameters
    ----------
    db : expyre.jobsdb.JobsDB
        The project's database (``expyre.jobsdb.jobs_db()``).

    Attributes
    ----------
    possible_status : list of str
        Every job status (0.1.6's, plus ``stale``: made by code that has changed since).
    status_group : dict of str to list of str
        Names usable as a status in :meth:`jobs`: ``ongoing`` (not finished yet) and
        ``can_produce_results`` (0.1.6's groups).
    """

    possible_status = list(STATES)
    status_group = {
        "ongoing": ["created", "submitted", "started"],
        "can_produce_results": ["created", "submitted", "started", "succeeded", "died"],
    }

    def __init__(self, db: JobsDB) -> None:
        self.db = db
        self.db_filename = db.path

    def jobs(
        self,
        status: str | Iterable[str] | None = None,
        id: str | Iterable[str] | None = None,  # noqa: A002 - 0.1.6's keyword
        name: str | Iterable[str] | None = None,
        system: str | Iterable[str] | None = None,
        readable: bool = True,
    ) -> Iterator[dict]:
        """Jobs matching every given criterion, oldest first.

        Parameters
        ----------
        status : str or list of str, optional
            Statuses (see ``possible_status``) or group names (``status_group``).
        id, name, system : str or list of str, optional
            Regular expressions, each matched against the whole value; a job matches
            when any of them does.
        readable : bool
            Times as ``"YYYY-MM-DD HH:MM:SS"`` local time (True) or unix seconds.

        Yields
        ------
        dict
            0.1.6's columns (``id``, ``name``, ``from_dir``, ``status``, ``system``,
            ``remote_id``, ``remote_status``, ``creation_time``, ``status_time``), followed
            by this project's own columns.

        Raises
        ------
        ValueError
            For an unknown status or group, or a bad regular expression.
        """
        statuses = _as_list(status)
        if statuses is not None:
            unknown = [s for s in statuses if s not in STATES and s not in self.status_group]
            if unknown:
                raise ValueError(
                    f"JobsDB.jobs: unknown status {unknown}; use statuses {list(STATES)} or "
                    f"groups {sorted(self.status_group)}"
                )
            statuses = {x for s in statuses for x in self.status_group.get(s, [s])}
        patterns = {
            column: _compile(column, _as_list(value))
            for column, value in (("id", id), ("name", name), ("system", system))
        }
        for row in self.db.select(statuses=statuses):
            if all(_matches(regexes, row[column]) for column, regexes in patterns.items()):
                yield _legacy_row(row, readable)

    def add(
        self,
        id: str,  # noqa: A002 - 0.1.6's keyword
        name: str,
        from_dir: str,
        status: str = "created",
        system: str | None = None,
        remote_id: str | None = None,
        remote_status: str | None = None,
    ) -> None:
        """Record a job made outside expyre (as ``xpr create_job`` does).

        The job gets a key no call can have, so no workflow ever reuses it.

        Raises
        ------
        ValueError
            If ``id`` exists already or ``status`` is unknown.
        """
        if status not in STATES:
            raise ValueError(f"JobsDB.add: status {status!r} is not one of {list(STATES)}")
        if self.db.get(id) is not None:
            raise ValueError(f"JobsDB trying to add job {id} which already exists")
        self.db.add_manual(
            id,
            name=name,
            stage_dir=from_dir,
            system=system,
            status=status,
            info={"created_by": "expyre.config.db.add"},
            remote_id=remote_id,
            queue_state=remote_status,
        )

    def update(self, id: str, /, **kwargs: Any) -> None:  # noqa: A002 - 0.1.6's name
        """Change columns of one job (0.1.6's names or this project's).

        A new ``status`` must be reachable from the current one (``created`` from a
        finished or queued job is a reset, as ``xpr reset_status``).

        Raises
        ------
        ValueError
            If the job does not exist.
        expyre.jobsdb.IllegalTransition
            For a status change the jobs database does not allow.
        """
        current = self.db.get(id)
        if current is None:
            raise ValueError(f"JobsDB trying to update job {id}, found 0 such entries")
        fields = {_COLUMN_NAMES.get(k, k): v for k, v in kwargs.items()}
        status = fields.pop("status", None)
        if status is None or status == current["status"]:
            if fields:
                self.db.update(id, **fields)
            return
        if status == "created" and current["status"] in RESETTABLE_STATES:
            self.db.reset(id, reason="status set through expyre.config.db.update")
            if fields:
                self.db.update(id, **fields)
            return
        if status not in ALLOWED_TRANSITIONS.get(current["status"], ()):
            raise IllegalTransition(
                f"expyre.config.db.update: job {id} is {current['status']!r} and cannot "
                f"become {status!r} (allowed: "
                f"{sorted(ALLOWED_TRANSITIONS[current['status']]) or 'none'}); use xpr "
                "cancel/reset_status/rm for the usual changes"
            )
        self.db.transition(id, status, reason="set through expyre.config.db.update", **fields)

    def remove(self, id: str) -> None:  # noqa: A002 - 0.1.6's name
        """Delete one job's row (its files stay; ``xpr rm`` removes both).

        Raises
        ------
        ValueError
            If the job does not exist.
        """
        if self.db.get(id) is None:
            raise ValueError(f"JobsDB trying to remove job {id}, found 0 such entries")
        self.db.delete(id)

    def unlock(self) -> None:
        """Replace a database stuck in a locked state with a fresh copy of it.

        Only when no other process uses the database (see :func:`expyre.dbrepair.rebuild`).
        """
        from expyre.dbrepair import rebuild  # only needed here

        self.db.close()
        rebuild(self.db.path)

    def __str__(self) -> str:
        lines = [f"JobsDB {self.db_filename}", " ".join(_LEGACY_COLUMNS), "-" * 20]
        lines += [str({k: job[k] for k in _LEGACY_COLUMNS}) for job in self.jobs()]
        return "\n".join([*lines, "-" * 20])


def _as_list(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _compile(column: str, patterns: list[str] | None) -> list[re.Pattern] | None:
    if patterns is None:
        return None
    try:
        return [re.compile(p) for p in patterns]
    except re.error as exc:
        raise ValueError(
            f"JobsDB.jobs: bad regular expression in {column}={patterns}: {exc}"
        ) from exc


def _matches(regexes: list[re.Pattern] | None, value: str | None) -> bool:
    if regexes is None:
        return True
    return value is not None and any(r.fullmatch(value) for r in regexes)


def _legacy_row(row: dict, readable: bool) -> dict:
    created, changed = row.get("created_at"), row.get("updated_at")
    if readable:
        created, changed = (
            None if t is None else time.strftime("%Y-%m-%d %X", time.localtime(t))
            for t in (created, changed)
        )
    legacy = {
        "id": row["id"],
        "name": row["name"],
        "from_dir": row["stage_dir"],
        "status": row["status"],
        "system": row["system"],
        "remote_id": row["remote_id"],
        "remote_status": row["queue_state"],
        "creation_time": created,
        "status_time": changed,
    }
    return {**legacy, **{k: v for k, v in row.items() if k not in legacy}}
