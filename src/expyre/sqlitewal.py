"""The sqlite plumbing shared by the jobs database and the item store.

Both are one sqlite file that several processes (drivers, ``xpr``, jobs) write at once, so
both open it the same way (write-ahead log, a busy timeout), retry what sqlite refuses at
once while another process holds the lock, and write in ``BEGIN IMMEDIATE`` transactions
(the write lock is taken at the start, so two writers never deadlock upgrading a read).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

__all__ = ["open_shared", "retry_locked", "write_transaction"]

T = TypeVar("T")


def retry_locked(action: Callable[[], T], patience_s: float) -> T:
    """Run ``action``, retrying while sqlite reports the database as locked or busy.

    The busy timeout covers most waits; this catches the cases sqlite reports immediately
    (e.g. WAL recovery by another process) so "database is locked" never reaches users.

    Parameters
    ----------
    action : callable
        The sqlite call, without arguments.
    patience_s : float
        Seconds after which a lock error is raised instead of retried.
    """
    deadline = time.monotonic() + patience_s
    delay = 0.05
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            msg = str(exc).lower()
            if ("locked" not in msg and "busy" not in msg) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 1.0)


def open_shared(
    path: Path, *, busy_timeout_s: float, patience_s: float, synchronous: str
) -> sqlite3.Connection:
    """Open (creating its directory) a database file that other processes write too.

    Parameters
    ----------
    path : Path
        The database file.
    busy_timeout_s : float
        Seconds sqlite itself waits for another process's lock.
    patience_s : float
        Seconds :func:`retry_locked` retries switching to the write-ahead log.
    synchronous : str
        ``"FULL"`` (a commit survives a power cut) or ``"NORMAL"`` (it survives a crash of
        the process; WAL keeps the file consistent either way).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=60.0, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout={int(1000 * busy_timeout_s)}")
    retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"), patience_s)
    conn.execute(f"PRAGMA synchronous={synchronous}")
    return conn


@contextmanager
def write_transaction(conn: sqlite3.Connection, patience_s: float) -> Iterator[sqlite3.Connection]:
    """One ``BEGIN IMMEDIATE`` ... ``COMMIT``, rolled back if the body raises."""
    retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"), patience_s)
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    retry_locked(lambda: conn.execute("COMMIT"), patience_s)
