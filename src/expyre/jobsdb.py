"""The jobs database: the only state shared between drivers, reruns and ``xpr``.

sqlite in WAL mode. Every state change is one ``BEGIN IMMEDIATE`` transaction that reads the
current status and refuses a transition that is not in :data:`ALLOWED_TRANSITIONS`, so two
drivers working on the same project (or a driver and ``xpr``) never lose an update, and a
driver killed at any instant leaves a database the next run reads as is.

States::

    created -> submitted -> started -> succeeded -> processed -> cleaned
                   |           |    -> failed
                   +-----------+----> died      (left the queue without a result)
    any live or finished state -> stale         (same call, edited code; never reused)
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from expyre.config import ProjectConfig

__all__ = [
    "ALLOWED_TRANSITIONS",
    "FINAL_STATES",
    "LIVE_STATES",
    "RESETTABLE_STATES",
    "STATES",
    "IllegalTransition",
    "JobsDB",
    "jobs_db",
    "make_job_id",
]

STATES = (
    "created",
    "submitted",
    "started",
    "succeeded",
    "failed",
    "died",
    "processed",
    "stale",
    "cleaned",
)
#: states in which the job is (or may be) waiting or running in a queue
LIVE_STATES = frozenset({"submitted", "started"})
#: states in which the job will not change by itself any more
FINAL_STATES = frozenset({"succeeded", "failed", "died", "processed"})

ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    "created": frozenset({"submitted", "cleaned", "stale"}),
    # back to "created" only when the submit command certainly did not queue the job
    "submitted": frozenset({"started", "succeeded", "failed", "died", "stale", "created"}),
    "started": frozenset({"succeeded", "failed", "died", "stale"}),
    "succeeded": frozenset({"processed", "cleaned", "stale"}),
    # a failed/died job is "processed" once its failure was reported or tolerated
    "failed": frozenset({"created", "processed", "cleaned", "stale"}),
    "died": frozenset({"created", "processed", "cleaned", "stale"}),
    "processed": frozenset({"cleaned", "stale"}),
    "stale": frozenset({"cleaned"}),
    "cleaned": frozenset(),
}
#: states ``xpr reset_status`` may send back to "created" (an explicit user decision)
RESETTABLE_STATES = frozenset({"submitted", "started", "succeeded", "failed", "died", "processed"})

_SCHEMA = """
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
_COLUMNS = [
    "id",
    "name",
    "key",
    "call_digest",
    "code_fingerprint",
    "system",
    "status",
    "remote_id",
    "stage_dir",
    "remote_dir",
    "queue_state",
    "n_submissions",
    "created_at",
    "submitted_at",
    "updated_at",
    "left_queue_at",
    "info",
]
_UPDATABLE = frozenset(_COLUMNS) - {"id", "status", "created_at"}

# How long to keep retrying when another process holds the write lock, seconds.
_LOCK_PATIENCE_S = 600.0


class IllegalTransition(RuntimeError):
    """A state change that the state machine does not allow (or a job that does not exist)."""


class JobsDB:
    """Access to one project's ``jobs.db``.

    Parameters
    ----------
    path : path-like
        Database file; created (with its directory) on first use.

    Notes
    -----
    Safe to share between threads of one process; each process opens its own connection.
    Rows are returned as plain dicts with ``info`` decoded from JSON.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1

    # ------------------------------------------------------------------ plumbing

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # never reuse across fork
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=60.0, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            _retry_locked(lambda: conn.execute("PRAGMA journal_mode=WAL"))
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA busy_timeout=60000")
            _retry_locked(lambda: conn.executescript(_SCHEMA))
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, retried while another process holds the lock."""
        with self._lock:
            conn = self._connection()
            _retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            _retry_locked(lambda: conn.execute("COMMIT"))

    def close(self) -> None:
        """Close this process's connection (it reopens on next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------ reading

    def get(self, job_id: str) -> dict | None:
        """The row of ``job_id``, or None."""
        with self._lock:
            cur = self._connection().execute("SELECT * FROM jobs WHERE id = ?", (job_id,))
            row = cur.fetchone()
        return _row_dict(row) if row else None

    def select(
        self,
        ids: Iterable[str] | None = None,
        statuses: Iterable[str] | None = None,
        systems: Iterable[str] | None = None,
        decode_info: bool = True,
    ) -> list[dict]:
        """Rows matching all given exact filters, oldest first.

        Parameters
        ----------
        ids, statuses, systems : iterable of str, optional
            Exact values to keep; None keeps all.
        decode_info : bool
            Parse the ``info`` JSON column (False leaves it as text: faster for listings).
        """
        clauses, params = [], []
        for column, values in (("id", ids), ("status", statuses), ("system", systems)):
            if values is not None:
                values = list(values)
                clauses.append(f"{column} IN ({','.join('?' * len(values))})" if values else "0")
                params.extend(values)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock:
            cur = self._connection().execute(
                f"SELECT * FROM jobs {where} ORDER BY created_at, id", params
            )
            if not decode_info:
                return [dict(r) for r in cur.fetchall()]
            return [_row_dict(r) for r in cur.fetchall()]

    def count_by_status(self) -> dict[str, int]:
        """Number of rows in each status."""
        with self._lock:
            cur = self._connection().execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            return dict(cur.fetchall())

    # ------------------------------------------------------------------ writing

    def create_or_reuse(self, row: dict, reuse: bool = True) -> tuple[dict, bool, list[dict]]:
        """Find a job for this call, or insert ``row`` -- atomically.

        Parameters
        ----------
        row : dict
            New row's columns; must include id, name, key, call_digest, code_fingerprint,
            stage_dir.
        reuse : bool
            Whether an existing job with the same ``key`` may be returned.

        Returns
        -------
        row : dict
            The reused or inserted row.
        reused : bool
        stale : list of dict
            Rows with the same call digest but another code fingerprint, now marked stale.
        """
        now = time.time()
        with self._transaction() as conn:
            candidates = [
                _row_dict(r)
                for r in conn.execute(
                    "SELECT * FROM jobs WHERE call_digest = ? AND status NOT IN ('cleaned', 'stale')"
                    " ORDER BY created_at DESC",
                    (row["call_digest"],),
                )
            ]
            stale = [r for r in candidates if r["code_fingerprint"] != row["code_fingerprint"]]
            for r in stale:
                conn.execute(
                    "UPDATE jobs SET status = 'stale', updated_at = ? WHERE id = ?", (now, r["id"])
                )
                r["status"] = "stale"
            same = [r for r in candidates if r["key"] == row["key"]]
            if reuse and same:
                return same[0], True, stale
            new = {"status": "created", "created_at": now, "updated_at": now, "info": {}, **row}
            new["info"] = json.dumps(new["info"], sort_keys=True)
            cols = [c for c in _COLUMNS if c in new]
            conn.execute(
                f"INSERT INTO jobs ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                [new[c] for c in cols],
            )
            inserted = _row_dict(
                conn.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()
            )
            return inserted, False, stale

    def transition(
        self, job_id: str, new_status: str, expect: Iterable[str] | None = None, **fields: Any
    ) -> dict:
        """Change a job's status (and other columns) in one transaction.

        Parameters
        ----------
        job_id : str
        new_status : str
            Target state; must be allowed from the current one.
        expect : iterable of str, optional
            Additionally require the current state to be one of these (compare-and-set).
        **fields
            Other columns to set at the same time (``info`` is merged, not replaced).

        Returns
        -------
        dict
            The updated row.

        Raises
        ------
        IllegalTransition
            If the job is missing, the transition is not allowed, or ``expect`` fails.
        """
        if new_status not in STATES:
            raise ValueError(f"unknown job status {new_status!r}; known are {STATES}")
        with self._transaction() as conn:
            current = self._locked_get(conn, job_id)
            if expect is not None and current["status"] not in set(expect):
                raise IllegalTransition(
                    f"job {job_id} is {current['status']!r}, expected one of {sorted(expect)}"
                )
            if new_status not in ALLOWED_TRANSITIONS[current["status"]]:
                raise IllegalTransition(
                    f"job {job_id}: {current['status']!r} -> {new_status!r} is not allowed "
                    f"(allowed: {sorted(ALLOWED_TRANSITIONS[current['status']]) or 'none'})"
                )
            return self._locked_update(conn, current, status=new_status, **fields)

    def begin_submission(
        self, job_id: str, allow_resubmit: bool = False, **fields: Any
    ) -> dict | None:
        """Record "being submitted" *before* the submit command runs (exactly-once).

        Allowed from ``created``; with ``allow_resubmit`` also from ``submitted`` without a
        scheduler id (a previous driver was killed mid-submit and the queue does not know
        the job). Increments ``n_submissions``.

        Other columns in ``fields`` (system, remote_dir) are set in the same transaction.

        Returns
        -------
        dict or None
            The updated row, or None if another process got there first.
        """
        with self._transaction() as conn:
            current = self._locked_get(conn, job_id)
            ok = current["status"] == "created" or (
                allow_resubmit and current["status"] == "submitted" and not current["remote_id"]
            )
            if not ok:
                return None
            return self._locked_update(
                conn,
                current,
                status="submitted",
                remote_id=None,
                queue_state=None,
                left_queue_at=None,
                submitted_at=time.time(),
                n_submissions=current["n_submissions"] + 1,
                **fields,
            )

    def update(self, job_id: str, **fields: Any) -> dict:
        """Set non-status columns of one job (``info`` is merged); returns the new row."""
        if "status" in fields:
            raise ValueError("use transition() to change a job's status")
        with self._transaction() as conn:
            return self._locked_update(conn, self._locked_get(conn, job_id), **fields)

    def reset(self, job_id: str) -> dict:
        """Send a job back to ``created`` (``xpr reset_status``); only from RESETTABLE_STATES."""
        with self._transaction() as conn:
            current = self._locked_get(conn, job_id)
            if current["status"] not in RESETTABLE_STATES:
                raise IllegalTransition(
                    f"job {job_id} is {current['status']!r}; only jobs in "
                    f"{sorted(RESETTABLE_STATES)} can be reset"
                )
            return self._locked_update(
                conn,
                current,
                status="created",
                remote_id=None,
                queue_state=None,
                left_queue_at=None,
            )

    def delete(self, job_id: str) -> None:
        """Remove a job's row (its directories must be gone already; see ``xpr rm``)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _locked_get(conn: sqlite3.Connection, job_id: str) -> dict:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise IllegalTransition(f"job {job_id!r} is not in the jobs database")
        return _row_dict(row)

    @staticmethod
    def _locked_update(conn: sqlite3.Connection, current: dict, **fields: Any) -> dict:
        unknown = set(fields) - _UPDATABLE - {"status"}
        if unknown:
            raise ValueError(f"unknown jobs columns {sorted(unknown)}")
        if "info" in fields:
            fields["info"] = json.dumps({**current["info"], **fields["info"]}, sort_keys=True)
        fields["updated_at"] = time.time()
        assignments = ", ".join(f"{c} = ?" for c in fields)
        conn.execute(
            f"UPDATE jobs SET {assignments} WHERE id = ?", [*fields.values(), current["id"]]
        )
        return _row_dict(
            conn.execute("SELECT * FROM jobs WHERE id = ?", (current["id"],)).fetchone()
        )


_DBS: dict[str, JobsDB] = {}
_DBS_LOCK = threading.Lock()


def jobs_db(config: ProjectConfig | None = None) -> JobsDB:
    """The (per-process cached) jobs database of a project scope (default: the current one)."""
    if config is None:
        from expyre.config import load_config

        config = load_config()
    with _DBS_LOCK:
        db = _DBS.get(str(config.db_path))
        if db is None:
            db = _DBS[str(config.db_path)] = JobsDB(config.db_path)
    return db


def make_job_id(name: str) -> str:
    """A unique job id that is also a safe scheduler job name and directory name.

    Letters, digits, ``_``, ``-`` and ``.`` only, starting with a letter (SGE refuses names
    starting with a digit), at most 48 characters of ``name`` plus a random suffix.
    """
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._-")[:48] or "job"
    if not safe[0].isalpha():
        safe = "j" + safe
    return f"{safe}_{secrets.token_hex(5)}"


def _row_dict(row: sqlite3.Row) -> dict:
    d = dict(row)
    d["info"] = json.loads(d.get("info") or "{}")
    return d


def _retry_locked(action: Any) -> Any:
    """Run ``action``, retrying while sqlite reports the database as locked or busy.

    busy_timeout covers most waits; this catches the cases sqlite reports immediately
    (e.g. WAL recovery by another process) so "database is locked" never reaches users.
    """
    deadline = time.monotonic() + _LOCK_PATIENCE_S
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
