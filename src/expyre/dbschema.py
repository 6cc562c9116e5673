"""The layout of ``jobs.db`` and the migrations that bring an older database up to date.

The version lives in sqlite's ``PRAGMA user_version``. Version 0 with a ``jobs`` table is a
database written before the version was recorded (the layout of :data:`SCHEMA_V1`). Each
migration runs inside the caller's write transaction, so a process killed mid-migration
leaves the old, complete database, and two processes opening an old database at once migrate
it exactly once (the second sees the new version once it gets the lock).
"""

from __future__ import annotations

import json
import sqlite3
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from expyre.dbpaths import PATH_COLUMNS, PATH_INFO_KEYS, to_stored

__all__ = [
    "SCHEMA_V1",
    "SCHEMA_VERSION",
    "NewerSchemaError",
    "create_or_migrate",
    "relativize_paths",
]

#: the layout this code writes
SCHEMA_VERSION = 3

#: the first layout (no version recorded); kept verbatim because migrations start from it
SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS jobs (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL,
    key              TEXT NOT NULL,
    call_digest      TEXT NOT NULL,
    code_fingerprint TEXT NOT NULL,
    system           TEXT,
    status           TEXT NOT NULL,
    remote_id        TEXT,
    stage_dir        TEXT NOT NULL,
    remote_dir       TEXT,
    queue_state      TEXT,
    n_submissions    INTEGER NOT NULL DEFAULT 0,
    created_at       REAL NOT NULL,
    submitted_at     REAL,
    updated_at       REAL NOT NULL,
    left_queue_at    REAL,
    info             TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs (key);
CREATE INDEX IF NOT EXISTS jobs_call_digest ON jobs (call_digest);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status);
CREATE INDEX IF NOT EXISTS jobs_system_status ON jobs (system, status);
CREATE INDEX IF NOT EXISTS jobs_name ON jobs (name);
"""


class NewerSchemaError(RuntimeError):
    """The database was written by a newer expyre whose layout this code does not know."""


def _v1_to_v2(conn: sqlite3.Connection, root: Path) -> None:
    """Run times, a failure category, and the history of every state change."""
    conn.execute("ALTER TABLE jobs ADD COLUMN started_at REAL")  # seen running, unix s
    conn.execute("ALTER TABLE jobs ADD COLUMN ended_at REAL")  # reached a final state, unix s
    conn.execute("ALTER TABLE jobs ADD COLUMN failure_category TEXT")
    conn.execute(
        """CREATE TABLE state_history (
               job_id     TEXT NOT NULL,
               at         REAL NOT NULL,
               from_state TEXT,
               to_state   TEXT NOT NULL,
               reason     TEXT
           )"""
    )
    conn.execute("CREATE INDEX state_history_job ON state_history (job_id, at)")
    # the best end time an old row knows: when it was seen leaving the queue
    conn.execute(
        "UPDATE jobs SET ended_at = left_queue_at"
        " WHERE status IN ('succeeded', 'failed', 'died', 'processed')"
    )
    conn.execute(
        "INSERT INTO state_history (job_id, at, from_state, to_state, reason)"
        " SELECT id, ?, NULL, status, 'state when the history started being recorded' FROM jobs",
        (time.time(),),
    )


def relativize_paths(conn: sqlite3.Connection, root: Path) -> int:
    """Store every absolute path inside its project relative to the root (see expyre.dbpaths).

    A job's stage directory is always ``<root>/stage/<id>``, so each row names the root it
    was written under: a database moved or copied before this ran is converted against that
    root, not against the current one. Idempotent; returns the number of rows changed.
    """
    changed = 0
    rows = conn.execute("SELECT id, stage_dir, remote_dir, info FROM jobs").fetchall()
    for job_id, stage_dir, remote_dir, info_text in rows:
        written_root = root
        if stage_dir and Path(stage_dir).is_absolute() and Path(stage_dir).parent.name == "stage":
            written_root = Path(stage_dir).parent.parent
        new = {
            "stage_dir": to_stored(stage_dir, written_root, PATH_COLUMNS["stage_dir"]),
            "remote_dir": to_stored(remote_dir, written_root, PATH_COLUMNS["remote_dir"]),
        }
        try:
            info = json.loads(info_text or "{}")
        except ValueError:
            info = None  # leave an unreadable info alone rather than lose it
        if isinstance(info, dict):
            for key, scope in PATH_INFO_KEYS.items():
                if isinstance(info.get(key), str):
                    info[key] = to_stored(info[key], written_root, scope)
            new["info"] = json.dumps(info, sort_keys=True)
        if (new["stage_dir"], new["remote_dir"], new.get("info", info_text)) != (
            stage_dir,
            remote_dir,
            info_text,
        ):
            assignments = ", ".join(f"{c} = ?" for c in new)
            conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", [*new.values(), job_id])
            changed += 1
    return changed


def _v2_to_v3(conn: sqlite3.Connection, root: Path) -> None:
    """Paths relative to the project root, so a project can be moved or copied."""
    relativize_paths(conn, root)


#: migration from version N to N + 1, by N
_MIGRATIONS: dict[int, Callable[[sqlite3.Connection, Path], None]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
}


def _has_jobs_table(conn: sqlite3.Connection) -> bool:
    return (
        conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'jobs'"
        ).fetchone()
        is not None
    )


#: where a jobs table of expyre-wfl 0.1.6 found in jobs.db is kept
LEGACY_0_1_6_TABLE = "jobs_expyre_0_1_6"


def _set_aside_0_1_6_table(conn: sqlite3.Connection, path: object) -> None:
    """Keep a jobs table written by expyre-wfl 0.1.6 under another name (with a warning).

    Its columns are not this layout's and its jobs' stage directories are 0.1.6's, so
    they cannot be continued here; renaming (not dropping) loses none of its rows.
    """
    if conn.execute("PRAGMA user_version").fetchone()[0] != 0 or not _has_jobs_table(conn):
        return
    columns = {row[1] for row in conn.execute("PRAGMA table_info(jobs)")}
    if "from_dir" not in columns or "key" in columns:
        return
    n_jobs = conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]
    conn.execute(f"ALTER TABLE jobs RENAME TO {LEGACY_0_1_6_TABLE}")
    warnings.warn(
        f"the jobs database {path} was written by expyre-wfl 0.1.6; its {n_jobs} job(s) are "
        f"kept in its table {LEGACY_0_1_6_TABLE!r} but cannot be continued by this expyre "
        "(their stage directories have 0.1.6's layout): rerunning your scripts submits new "
        "jobs, and `xpr ls` lists only those",
        UserWarning,
        stacklevel=2,
    )


def stored_version(conn: sqlite3.Connection) -> int:
    """The layout version of an open database (0: empty, 1: written before versions existed)."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == 0 and _has_jobs_table(conn):
        return 1
    return version


def create_or_migrate(conn: sqlite3.Connection, path: object) -> int:
    """Bring the database up to :data:`SCHEMA_VERSION`; call inside a write transaction.

    Parameters
    ----------
    conn : sqlite3.Connection
        Connection with an open ``BEGIN IMMEDIATE`` transaction.
    path : object
        The database file, for messages.

    Returns
    -------
    int
        The version found before migrating (0 for a new database).

    Raises
    ------
    NewerSchemaError
        If the database is newer than this code.
    """
    _set_aside_0_1_6_table(conn, path)
    found = stored_version(conn)
    if found > SCHEMA_VERSION:
        raise NewerSchemaError(
            f"the jobs database {path} has layout version {found}, but this expyre only knows "
            f"versions up to {SCHEMA_VERSION}: it was written by a newer expyre. Upgrade expyre "
            "(pip install -U expyre-wfl) in this environment; the database is left untouched"
        )
    if found == 0:
        # statement by statement: executescript() would commit the open transaction
        for statement in SCHEMA_V1.split(";"):
            if statement.strip():
                conn.execute(statement)
        version = 1
    else:
        version = found
    while version < SCHEMA_VERSION:
        _MIGRATIONS[version](conn, Path(str(path)).resolve().parent)
        version += 1
    if found != SCHEMA_VERSION:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    return found
