"""Rebuild a damaged or stuck ``jobs.db``: ``python -m expyre.dbrepair PATH``.

A corrupt database, or one whose write lock is never released (a process that died on a
filesystem that keeps its locks), cannot be fixed in place. This copies every row that can
still be read into a fresh database next to it, checks the copy, moves the old files aside
as ``jobs.db.broken-<time>`` (with their ``-wal``/``-shm``) and puts the copy in place.
Readers are not blocked by a held write lock in WAL mode, so a stuck database copies whole;
a corrupt one loses only the rows sqlite can no longer read. Stage directories are never
touched, so every recovered finished job keeps its results.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import time
from pathlib import Path

from expyre.dbschema import SCHEMA_VERSION, create_or_migrate, relativize_paths
from expyre.projectid import PROJECT_TABLE

__all__ = ["rebuild"]


def _copy_rows(src: sqlite3.Connection, dst: sqlite3.Connection, table: str) -> tuple[int, int]:
    """Copy ``table`` row by row (a corrupt page loses its rows, not the whole table)."""
    copied = lost = 0
    try:
        src_columns = [r[1] for r in src.execute(f"PRAGMA table_info({table})")]
    except sqlite3.DatabaseError:
        return 0, 0
    dst_columns = {r[1] for r in dst.execute(f"PRAGMA table_info({table})")}
    columns = [c for c in src_columns if c in dst_columns]
    if not columns:
        return 0, 0
    insert = (
        f"INSERT OR IGNORE INTO {table} ({','.join(columns)})"
        f" VALUES ({','.join('?' * len(columns))})"
    )
    try:
        rowids = [r[0] for r in src.execute(f"SELECT rowid FROM {table}")]
    except sqlite3.DatabaseError:
        rowids = []
        lost += 1
    select = f"SELECT {','.join(columns)} FROM {table} WHERE rowid = ?"
    for rowid in rowids:
        try:
            row = src.execute(select, (rowid,)).fetchone()
        except sqlite3.DatabaseError:
            lost += 1
            continue
        if row is not None:
            dst.execute(insert, tuple(row))
            copied += 1
    return copied, lost


def rebuild(path: str | os.PathLike) -> dict[str, int]:
    """Replace the database at ``path`` with a fresh copy of everything readable in it.

    Parameters
    ----------
    path : path-like
        The ``jobs.db`` to rebuild. Every process using it must be stopped first.

    Returns
    -------
    dict
        ``{"jobs": rows copied, "history": history rows copied, "unreadable": rows lost}``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no jobs database at {path}")
    fresh = path.with_name(f"{path.name}.rebuilt-{os.getpid()}")
    fresh.unlink(missing_ok=True)
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
    src.execute("PRAGMA busy_timeout=5000")
    dst = sqlite3.connect(fresh, isolation_level=None)
    try:
        dst.execute("BEGIN IMMEDIATE")
        create_or_migrate(dst, fresh)
        jobs, lost_jobs = _copy_rows(src, dst, "jobs")
        history, lost_history = _copy_rows(src, dst, "state_history")
        # the project's identity names its remote run directories: keep it (expyre.projectid)
        dst.execute(PROJECT_TABLE)
        _copy_rows(src, dst, "project")
        relativize_paths(dst, path.resolve().parent)  # rows copied from an older layout
        dst.execute("COMMIT")
        check = dst.execute("PRAGMA integrity_check").fetchone()[0]
        if check != "ok":
            raise RuntimeError(f"the rebuilt database {fresh} fails its integrity check: {check}")
    finally:
        src.close()
        dst.close()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in ("", "-wal", "-shm"):
        old = path.with_name(path.name + suffix)
        if old.exists():
            os.replace(old, path.with_name(f"{path.name}.broken-{stamp}{suffix}"))
    os.replace(fresh, path)
    return {"jobs": jobs, "history": history, "unreadable": lost_jobs + lost_history}


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m expyre.dbrepair PATH``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m expyre.dbrepair PATH/TO/jobs.db", file=sys.stderr)
        return 2
    try:
        counts = rebuild(argv[0])
    except (OSError, RuntimeError, sqlite3.Error) as exc:
        print(f"expyre.dbrepair: {exc}", file=sys.stderr)
        return 1
    print(
        f"rebuilt {argv[0]} (layout version {SCHEMA_VERSION}): {counts['jobs']} jobs and "
        f"{counts['history']} history rows copied, {counts['unreadable']} unreadable rows lost; "
        "the old files are kept as *.broken-<time>"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
