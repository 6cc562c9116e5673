"""Which project a jobs database belongs to: an identity that survives a move but not a copy.

A project's jobs run in directories named by job id under a system's ``rundir`` -- on a
cluster, outside the project. ``cp -a proj proj2`` copies the jobs database with those ids,
so without more the copy's jobs would point at the original's remote directories and queue
entries: ``xpr rm -c`` in the copy would delete the original's files, a cancel would kill the
original's jobs, and a rerun could clobber its remote results. So each database carries a
*project id*, and remote run directories live under ``<rundir>/<project id>/``.

The database also records where it was last opened (its root) and its file's device and
inode. When it is opened somewhere else:

* same file (a rename keeps the inode): the project was **moved**; it keeps its id, so its
  queued jobs and remote results are found where they are;
* the old place still holds a ``jobs.db``: this is a **copy**; it gets a new id and lets go
  of everything that belongs to the original (:func:`_detach`): jobs that were queued or
  running go back to ``created`` (the copy runs them itself when its script is rerun),
  every job forgets the original's scheduler id and remote directory, so no command of the
  copy can cancel or delete them, and every job gets a new job id (its name in a queue);
* nothing is left at the old place (moved to another filesystem, or the original deleted):
  a move; the project keeps its id.

A copy whose original was itself moved before either was opened again cannot be told from a
move; both then keep the id (their jobs' directories are still kept apart by job id).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import sys
import time
from pathlib import Path

from expyre.dbpaths import to_absolute

__all__ = ["PROJECT_DIR_PREFIX", "PROJECT_TABLE", "ensure_identity", "is_project_dir_name"]

#: remote run directories of a project are ``<rundir>/xpp_<16 hex digits>/<job id>``; a job id
#: always ends in ``_<10 hex digits>``, so the two can never be confused
PROJECT_DIR_PREFIX = "xpp_"

PROJECT_TABLE = """CREATE TABLE IF NOT EXISTS project (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
)"""
# files a previous run of a job leaves in its stage directory (expyre.runner/allocation)
_RUN_FILES = (
    "_expyre_result.pkl",
    "_expyre_started",
    "_expyre_job.stdout",
    "_expyre_job.stderr",
    "_expyre_done",
)
_CLAIM_DIR = "_expyre_claim"


def is_project_dir_name(name: str) -> bool:
    """Whether a directory name under a rundir is a project's (``xpp_`` + 16 hex digits)."""
    digits = name[len(PROJECT_DIR_PREFIX) :]
    return (
        name.startswith(PROJECT_DIR_PREFIX)
        and len(digits) == 16
        and all(c in "0123456789abcdef" for c in digits)
    )


def _new_id() -> str:
    return PROJECT_DIR_PREFIX + secrets.token_hex(8)


def _file_id(path: Path) -> str:
    st = os.stat(path)
    return f"{st.st_dev}:{st.st_ino}"


def _read(conn: sqlite3.Connection) -> dict[str, str]:
    try:
        return dict(conn.execute("SELECT key, value FROM project").fetchall())
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return {}
        raise


def _write(conn: sqlite3.Connection, **values: str) -> None:
    for key, value in values.items():
        conn.execute(
            "INSERT INTO project (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )


def ensure_identity(conn: sqlite3.Connection, db_path: Path, begin, commit) -> str:
    """The project id of the open database ``db_path``; decides move vs copy (module doc).

    Parameters
    ----------
    conn : sqlite3.Connection
        Open connection, no transaction in progress.
    db_path : Path
        The database file.
    begin, commit : callable
        Start / commit a write transaction on ``conn`` (the caller's retrying versions).

    Returns
    -------
    str
        The project id (``xpp_`` + 16 hex digits).
    """
    root = str(db_path.resolve().parent)
    here = _file_id(db_path)
    known = _read(conn)
    if known.get("id") and known.get("root") == root and known.get("file") == here:
        return known["id"]  # the common case: one read, no lock
    begin()
    try:
        conn.execute(PROJECT_TABLE)
        known = _read(conn)  # again, under the lock: another process may have decided
        project_id = known.get("id")
        old_root = known.get("root")
        if not project_id:
            project_id = _new_id()
        elif old_root != root and known.get("file") != here:
            old_db = Path(old_root or "/nonexistent", db_path.name)
            if old_db.exists() and not old_db.samefile(db_path):
                project_id = _detach(conn, Path(root), old_root, project_id)
            else:
                print(
                    f"expyre: this project's jobs database was moved from {old_root} to "
                    f"{root}; its jobs keep their queue entries and remote directories",
                    file=sys.stderr,
                )
        _write(conn, id=project_id, root=root, file=here)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    commit()
    return project_id


def _detach(conn: sqlite3.Connection, root: Path, old_root: str, old_id: str) -> str:
    """Make a copied database the copy's own: a new id, nothing pointing at the original.

    Every job also gets a new job id. A job id is the job's name in its queue and the name
    of its remote directory; shared ids would let the copy and the original mistake each
    other's queued jobs for their own (a lost submission is looked for by name). A job keeps
    its key, so reruns still find it, and its stage directory (whose name is the old id).
    """
    from expyre.jobsdb import make_job_id  # jobsdb imports this module

    new_id = _new_id()
    now = time.time()
    reason = (
        f"project copied from {old_root}: the copy lets go of the original's queue entries "
        "and remote directories"
    )
    rows = conn.execute("SELECT id, name, status, remote_dir, stage_dir, info FROM jobs").fetchall()
    n_reset = 0
    for job_id, name, status, remote_dir, stage_dir, info_text in rows:
        try:
            info = json.loads(info_text or "{}")
        except ValueError:
            info = {}
        for key in ("pack", "cancel_pending"):
            info.pop(key, None)
        # an absolute run directory is outside this copy: the original's (a relative one is
        # inside the copied project, so the copy's own)
        keep_dir = remote_dir if remote_dir and not os.path.isabs(remote_dir) else None
        copy_id = make_job_id(name)
        fields = {
            "id": copy_id,
            "remote_id": None,
            "remote_dir": keep_dir,
            "info": json.dumps(info, sort_keys=True),
            "updated_at": now,
        }
        to_state, why = status, f"{reason}; the job was {job_id} there"
        if status in ("submitted", "started"):
            # queued or running for the original: the copy must run it itself
            fields.update(
                status="created",
                queue_state=None,
                left_queue_at=None,
                started_at=None,
                ended_at=None,
            )
            to_state = "created"
            why += ", queued or running, so the copy runs it again"
            _forget_run(to_absolute(stage_dir, root))
            n_reset += 1
        assignments = ", ".join(f"{c} = ?" for c in fields)
        conn.execute(f"UPDATE jobs SET {assignments} WHERE id = ?", [*fields.values(), job_id])
        conn.execute("UPDATE state_history SET job_id = ? WHERE job_id = ?", (copy_id, job_id))
        conn.execute(
            "INSERT INTO state_history (job_id, at, from_state, to_state, reason)"
            " VALUES (?, ?, ?, ?, ?)",
            (copy_id, now, status, to_state, why),
        )
    print(
        f"expyre: this project is a copy of {old_root} (project {old_id}); it is now project "
        f"{new_id} with new job ids: {n_reset} job(s) queued or running for the original "
        "will run again here when the workflow is rerun, and no command here touches the "
        "original's jobs or remote directories",
        file=sys.stderr,
    )
    return new_id


def _forget_run(stage_dir: str | None) -> None:
    """Delete what a run of the original left in the copy's stage directory (the copy's own
    files), so the copy's own run of the job starts clean (a copied claim would keep a packed
    allocation from ever running it)."""
    if not stage_dir:
        return
    for name in _RUN_FILES:
        Path(stage_dir, name).unlink(missing_ok=True)
    shutil.rmtree(Path(stage_dir, _CLAIM_DIR), ignore_errors=True)
