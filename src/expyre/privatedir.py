"""Directories that must belong to this user alone (ssh control sockets, core locks)."""

from __future__ import annotations

import os
import stat

__all__ = ["NotPrivateError", "private_dir"]


class NotPrivateError(PermissionError):
    """A directory we rely on belongs to someone else or others may write to it."""


def private_dir(path: str | os.PathLike, what: str, fix: str = "") -> str:
    """Create ``path`` mode 0700, or check an existing one is ours and not writable by others.

    Parameters
    ----------
    path : str or path-like
        The directory.
    what : str
        What the directory is for, for the error message ("ssh control directory").
    fix : str
        Extra remedy appended to the message (e.g. an environment variable to set).

    Returns
    -------
    str
        ``path`` as a string.

    Raises
    ------
    NotPrivateError
        If it belongs to another user or others may write to it: whoever can create files
        there can hijack our ssh connection or block our jobs.
    """
    path = os.fspath(path)
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.stat(path)
    if info.st_uid != os.getuid() or info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise NotPrivateError(
            f"{what} {path!r} is not private to this user (owner uid {info.st_uid}, mode "
            f"{oct(info.st_mode & 0o777)}); remove it or make it mode 0700{fix}"
        )
    return path
