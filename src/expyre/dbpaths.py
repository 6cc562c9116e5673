"""Paths in the jobs database are stored relative to the project root, so projects can move.

A project is copied (``cp -a proj proj2``) or moved (``mv proj proj_moved``) as a whole. Had
the database kept absolute paths, commands in the copy would delete the original's job
directories, and a moved project would look for its results where they no longer are. So a
path inside the *project directory* is stored relative to the root (the directory holding
``jobs.db``) and resolved against wherever the database is now; any other path (a cluster's
run directory, a driver working outside the project) stays absolute.

The project directory is the one holding ``_expyre/`` (a driver usually runs there, so its
output directory moves with it), or the root itself when the root has another name (e.g.
``~/.expyre``, or an ``EXPYRE_ROOT`` pointing elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["PATH_COLUMNS", "PATH_INFO_KEYS", "project_dir", "to_absolute", "to_stored"]

#: columns holding local paths, with the directory a path must be inside to be stored
#: relative: "project" (the project directory) or "stage" (the root's ``stage/``, because
#: a ``remote_dir`` outside it is a directory on another machine)
PATH_COLUMNS = {"stage_dir": "project", "remote_dir": "stage"}
#: keys of the ``info`` JSON holding local paths
PATH_INFO_KEYS = {"output_dir": "project"}


def project_dir(root: Path) -> Path:
    """The directory that moves with the project: the parent of ``_expyre``, else the root."""
    return root.parent if root.name == "_expyre" else root


def _inside(path: str, directory: Path) -> bool:
    return path == str(directory) or path.startswith(str(directory).rstrip("/") + "/")


def to_stored(path: str | None, root: Path, scope: str) -> str | None:
    """The form of ``path`` kept in the database.

    Parameters
    ----------
    path : str or None
        A path as the caller uses it (absolute, or already relative = stored form).
    root : Path
        The project root (directory of ``jobs.db``), resolved.
    scope : {"project", "stage"}
        Which directory ``path`` must be inside to be stored relative.

    Returns
    -------
    str or None
        ``path`` relative to ``root`` (may start with ``..``) when inside the scope,
        otherwise ``path`` unchanged.
    """
    if not path or not os.path.isabs(path):
        return path
    path = os.path.normpath(path)
    inside = project_dir(root) if scope == "project" else root / "stage"
    if not _inside(path, inside):
        return path
    return os.path.relpath(path, root)


def to_absolute(stored: str | None, root: Path) -> str | None:
    """The absolute path a stored value means for a database whose root is ``root``."""
    if not stored or os.path.isabs(stored):
        return stored
    return os.path.normpath(os.path.join(root, stored))
