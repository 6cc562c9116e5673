"""The jobs database: the only state shared between drivers, reruns and ``xpr``.

sqlite in WAL mode. Every state change is one ``BEGIN IMMEDIATE`` transaction that reads the
current status and refuses a transition that is not in :data:`ALLOWED_TRANSITIONS`, so two
drivers working on the same project (or a driver and ``xpr``) never lose an update, and a
driver killed at any instant leaves a database the next run reads as is.

The states and the one table of allowed moves are in :mod:`expyre.lifecycle`; every write
here that changes a status goes through :func:`expyre.lifecycle.check_move`.

Every status change also appends a row to ``state_history`` in the same transaction, so
:meth:`JobsDB.history` tells how a job got where it is. The layout is versioned and older
databases are migrated on first open (:mod:`expyre.dbschema`). A database that cannot be
read, or whose lock is never released, raises :class:`JobsDBError` naming the file and
the command that repairs it (``python -m expyre.dbrepair``).
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

from expyre.attempts import attempt_record
from expyre.dbpaths import PATH_COLUMNS, PATH_INFO_KEYS, to_absolute, to_stored
from expyre.dbschema import SCHEMA_VERSION, NewerSchemaError, create_or_migrate
from expyre.envvars import lock_patience_s
from expyre.lifecycle import ALLOWED_TRANSITIONS, IllegalTransition, JobState, Move, check_move
from expyre.projectid import ensure_identity
from expyre.sqlitewal import open_shared, retry_locked, write_transaction

if TYPE_CHECKING:
    from expyre.config import ProjectConfig

__all__ = [
    "ALLOWED_TRANSITIONS",
    "FINAL_STATES",
    "LIVE_STATES",
    "Move",
    "RESETTABLE_STATES",
    "STATES",
    "IllegalTransition",
    "JobState",
    "JobsDB",
    "JobsDBError",
    "jobs_db",
    "make_job_id",
]

STATES = tuple(state.value for state in JobState)
#: states in which the job is (or may be) waiting or running in a queue
LIVE_STATES = frozenset(state.value for state in JobState if state.is_live)
#: states in which the job will not change by itself any more
FINAL_STATES = frozenset(state.value for state in JobState if state.is_final)
#: states ``xpr reset_status`` may send back to "created" (an explicit user decision)
RESETTABLE_STATES = frozenset(
    state.value
    for state, edges in ALLOWED_TRANSITIONS.items()
    if Move.RERUN in edges.get(JobState.CREATED, Move(0))
)

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
    "started_at",
    "ended_at",
    "failure_category",
]
_UPDATABLE = frozenset(_COLUMNS) - {"id", "status", "created_at"}
# ids per "IN (...)" query: well below sqlite's older limit of 999 parameters
_IDS_PER_QUERY = 900

# How long to keep retrying when another process holds the write lock, seconds
# (EXPYRE_DB_LOCK_PATIENCE, default 600): long enough for any real transaction of another
# driver, short enough that a lock nobody will ever release (a dead process on a filesystem
# that keeps its locks) becomes a clear error. Read when a database is opened, not at
# import, so a bad value is an error naming the variable, not a failed import.


class JobsDBError(RuntimeError):
    """The jobs database cannot be used: corrupt, locked for good, or from a newer expyre."""


def _repair_hint(path: Path) -> str:
    return (
        f"Stop every driver and `xpr` of this project, then run `python -m expyre.dbrepair "
        f"{path}`: it copies every readable row into a fresh database and keeps the old "
        "files next to it as jobs.db.broken-<time> (stage directories are not touched, so "
        "finished jobs whose rows are recovered keep their results)"
    )


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
        # paths in the database are relative to wherever the database is now
        self.root = self.path.resolve().parent
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._pid = -1
        self._project_id = ""

    # ------------------------------------------------------------------ plumbing

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # never reuse across fork
            with self._errors():
                conn = open_shared(
                    self.path,
                    busy_timeout_s=min(60.0, lock_patience_s()),
                    patience_s=lock_patience_s(),
                    synchronous="NORMAL",
                )
                conn.row_factory = sqlite3.Row
                # the common case (up to date) is one read, without taking the write lock
                if conn.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                    _retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
                    try:
                        create_or_migrate(conn, self.path)
                    except BaseException:
                        conn.execute("ROLLBACK")
                        conn.close()
                        raise
                    _retry_locked(lambda: conn.execute("COMMIT"))
                self._project_id = ensure_identity(
                    conn,
                    self.path,
                    begin=lambda: _retry_locked(lambda: conn.execute("BEGIN IMMEDIATE")),
                    commit=lambda: _retry_locked(lambda: conn.execute("COMMIT")),
                )
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn sqlite's errors about an unusable file into one message with the fix."""
        try:
            yield
        except NewerSchemaError as exc:
            raise JobsDBError(str(exc)) from None
        except sqlite3.OperationalError as exc:
            msg = str(exc).lower()
            if "locked" in msg or "busy" in msg:
                raise JobsDBError(
                    f"the jobs database {self.path} stayed locked for {lock_patience_s():.0f} s "
                    f"({exc}). Another process is holding its write lock: a driver or `xpr` "
                    "of this project that is still running (wait for it), or a dead one whose "
                    "lock was never released (a network filesystem can keep it). "
                    + _repair_hint(self.path)
                ) from None
            if "malformed" in msg or "not a database" in msg or "disk i/o" in msg:
                raise self._corrupt(exc) from None
            raise
        except sqlite3.DatabaseError as exc:  # malformed image, not a database, ...
            raise self._corrupt(exc) from None

    def _corrupt(self, exc: BaseException) -> JobsDBError:
        return JobsDBError(
            f"the jobs database {self.path} is corrupt and cannot be read ({exc}). "
            + _repair_hint(self.path)
        )

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, retried while another process holds the lock."""
        with (
            self._lock,
            self._errors(),
            write_transaction(self._connection(), lock_patience_s()) as conn,
        ):
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock, self._errors():
            yield self._connection()

    def close(self) -> None:
        """Close this process's connection (it reopens on next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    @property
    def project_id(self) -> str:
        """This project's identity (see :mod:`expyre.projectid`): names its remote run
        directories, and changes when the project turns out to be a copy."""
        with self._reading():
            return self._project_id

    # ------------------------------------------------------------------ reading

    def get(self, job_id: str) -> dict | None:
        """The row of ``job_id``, or None."""
        with self._reading() as conn:
            row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return self._decode(row) if row else None

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
        with self._reading() as conn:
            cur = conn.execute(f"SELECT * FROM jobs {where} ORDER BY created_at, id", params)
            return [self._decode(r, decode_info) for r in cur.fetchall()]

    def changed_rows(self, seen: dict[str, float | None]) -> dict[str, dict | None]:
        """The rows of those jobs in ``seen`` that changed since they were read.

        Parameters
        ----------
        seen : dict
            job id -> the ``updated_at`` of the row the caller holds (every write sets it;
            None: read the row in any case).

        Returns
        -------
        dict
            job id -> its row now, for each job whose ``updated_at`` differs; None for a job
            whose row is gone. A poll of a thousand jobs reads and decodes only the few
            that moved, with one query for the timestamps.
        """
        changed: list[str] = []
        found: set[str] = set()
        ids = list(seen)
        with self._reading() as conn:
            for start in range(0, len(ids), _IDS_PER_QUERY):
                batch = ids[start : start + _IDS_PER_QUERY]
                cur = conn.execute(
                    f"SELECT id, updated_at FROM jobs WHERE id IN ({','.join('?' * len(batch))})",
                    batch,
                )
                for job_id, updated_at in cur:
                    found.add(job_id)
                    if updated_at != seen[job_id]:
                        changed.append(job_id)
        rows: dict[str, dict | None] = {job_id: None for job_id in ids if job_id not in found}
        for start in range(0, len(changed), _IDS_PER_QUERY):
            rows.update(
                (r["id"], r) for r in self.select(ids=changed[start : start + _IDS_PER_QUERY])
            )
        return rows

    def count_by_status(self) -> dict[str, int]:
        """Number of rows in each status."""
        with self._reading() as conn:
            cur = conn.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status")
            return dict(cur.fetchall())

    def history(self, job_id: str) -> list[dict]:
        """Every recorded status change of ``job_id``, oldest first.

        Returns
        -------
        list of dict
            ``{"at": unix s, "from_state": str or None, "to_state": str, "reason": str}``;
            ``from_state`` is None for the creation of the job (or, for a job recorded before
            history was kept, its state at that moment).
        """
        with self._reading() as conn:
            cur = conn.execute(
                "SELECT at, from_state, to_state, reason FROM state_history WHERE job_id = ?"
                " ORDER BY at, rowid",
                (job_id,),
            )
            return [dict(r) for r in cur.fetchall()]

    def schema_version(self) -> int:
        """The layout version of the open database (:data:`expyre.dbschema.SCHEMA_VERSION`)."""
        with self._reading() as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    # ------------------------------------------------------------------ writing

    def add_manual(
        self,
        job_id: str,
        *,
        name: str,
        stage_dir: str | os.PathLike,
        system: str | None,
        status: str,
        info: dict,
        remote_id: str | None = None,
        queue_state: str | None = None,
    ) -> None:
        """Record a job made outside expyre (``xpr create_job``, 0.1.6's ``db.add``).

        Its key is ``manual:<job id>``, a key no call can have, so no workflow ever reuses
        it. The caller checks first that ``job_id`` is new (each says so in its own words).
        """
        manual = f"manual:{job_id}"
        self.create_or_reuse(
            {
                "id": job_id,
                "name": name,
                "key": manual,
                "call_digest": manual,
                "code_fingerprint": manual,
                "stage_dir": str(stage_dir),
                "system": system,
                "status": status,
                "remote_id": remote_id,
                "queue_state": queue_state,
                "info": info,
            },
            reuse=False,
        )

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
            Rows with the same call digest but another code fingerprint, now marked stale,
            plus stale rows of that call still waiting to be cancelled. Those that were
            queued or running carry ``info["cancel_pending"]`` (see :mod:`expyre.stale`).
        """
        now = time.time()
        with self._transaction() as conn:
            candidates = [
                self._decode(r)
                for r in conn.execute(
                    "SELECT * FROM jobs WHERE call_digest = ? AND status NOT IN ('cleaned', 'stale')"
                    " ORDER BY created_at DESC",
                    (row["call_digest"],),
                )
            ]
            stale = []
            for r in candidates:
                if r["code_fingerprint"] == row["code_fingerprint"]:
                    continue
                # a job still in a queue is cancelled by the caller; the mark, made in this
                # transaction, lets a later run finish the cancel if this process dies first
                pending = {"info": {"cancel_pending": True}} if r["status"] in LIVE_STATES else {}
                stale.append(
                    self._locked_update(
                        conn,
                        r,
                        status="stale",
                        move=Move.CODE_CHANGED,
                        reason="same call made by other code (code fingerprint "
                        f"{r['code_fingerprint'][:12]} -> {row['code_fingerprint'][:12]})",
                        **pending,
                    )
                )
            stale += [
                self._decode(r)
                for r in conn.execute(
                    "SELECT * FROM jobs WHERE call_digest = ? AND status = 'stale'"
                    " AND json_extract(info, '$.cancel_pending') = 1",
                    (row["call_digest"],),
                )
                if r["id"] not in {s["id"] for s in stale}
            ]
            same = [r for r in candidates if r["key"] == row["key"]]
            if reuse and same:
                return same[0], True, stale
            new = {"status": "created", "created_at": now, "updated_at": now, "info": {}, **row}
            new = self._encode(new)
            cols = [c for c in _COLUMNS if c in new]
            conn.execute(
                f"INSERT INTO jobs ({','.join(cols)}) VALUES ({','.join('?' * len(cols))})",
                [new[c] for c in cols],
            )
            _record_history(conn, row["id"], now, None, new["status"], "created")
            inserted = self._decode(
                conn.execute("SELECT * FROM jobs WHERE id = ?", (row["id"],)).fetchone()
            )
            return inserted, False, stale

    def transition(
        self,
        job_id: str,
        new_status: str,
        expect: Iterable[str] | None = None,
        reason: str | None = None,
        move: Move | None = Move.LIFE,
        **fields: Any,
    ) -> dict:
        """Change a job's status (and other columns) in one transaction.

        Parameters
        ----------
        job_id : str
        new_status : str
            Target state; must be allowed from the current one.
        expect : iterable of str, optional
            Additionally require the current state to be one of these (compare-and-set).
        reason : str, optional
            Why, for the job's state history (default: the queue state, if given).
        move : Move or None
            The kind of change (default: the job's own life); the edge of
            :data:`ALLOWED_TRANSITIONS` must allow it. None: any kind the edge allows (an
            explicit choice of the target state by the user).
        **fields
            Other columns to set at the same time (``info`` is merged, not replaced).

        Returns
        -------
        dict
            The updated row.

        Raises
        ------
        IllegalTransition
            If the job is missing, the move is not allowed, or ``expect`` fails.
        """
        if new_status not in STATES:
            raise ValueError(f"unknown job status {new_status!r}; known are {STATES}")
        with self._transaction() as conn:
            current = self._locked_get(conn, job_id)
            if expect is not None and current["status"] not in set(expect):
                raise IllegalTransition(
                    f"job {job_id} is {current['status']!r}, expected one of "
                    f"{sorted(str(s) for s in expect)}"
                )
            # checked here too, so a "move" to the same state is refused as well
            check_move(job_id, current["status"], new_status, move)
            return self._locked_update(
                conn, current, status=new_status, reason=reason, move=move, **fields
            )

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
        return self.begin_submissions({job_id: fields}, allow_resubmit)[job_id]

    def begin_submissions(
        self, fields_of: dict[str, dict[str, Any]], allow_resubmit: bool = False
    ) -> dict[str, dict | None]:
        """:meth:`begin_submission` of many jobs (a pack's chunks) in one transaction.

        Parameters
        ----------
        fields_of : dict
            job id -> the other columns to set with its submission.
        allow_resubmit : bool
            As for :meth:`begin_submission`.

        Returns
        -------
        dict
            job id -> its updated row, or None if another process got there first.
        """
        rows: dict[str, dict | None] = {}
        with self._transaction() as conn:
            for job_id, fields in fields_of.items():
                current = self._locked_get(conn, job_id)
                ok = current["status"] == "created" or (
                    allow_resubmit and current["status"] == "submitted" and not current["remote_id"]
                )
                rows[job_id] = (
                    self._locked_update(
                        conn,
                        current,
                        status=JobState.SUBMITTED,
                        remote_id=None,
                        queue_state=None,
                        left_queue_at=None,
                        submitted_at=time.time(),
                        started_at=None,
                        ended_at=None,
                        n_submissions=current["n_submissions"] + 1,
                        reason=f"submission {current['n_submissions'] + 1}",
                        **fields,
                    )
                    if ok
                    else None
                )
        return rows

    def update(self, job_id: str, **fields: Any) -> dict:
        """Set non-status columns of one job (``info`` is merged); returns the new row."""
        return self.update_many([job_id], **fields)[job_id]

    def update_many(self, job_ids: Iterable[str], **fields: Any) -> dict[str, dict]:
        """Set the same non-status columns of many jobs in one transaction (``info`` is
        merged into each); returns the new rows by id."""
        if "status" in fields:
            raise ValueError("use transition() to change a job's status")
        with self._transaction() as conn:
            return {
                job_id: self._locked_update(conn, self._locked_get(conn, job_id), **fields)
                for job_id in dict.fromkeys(job_ids)
            }

    def reset(self, job_id: str, reason: str = "reset by the user") -> dict:
        """Send a job back to ``created`` to run again (``xpr reset_status``, ``force_rerun``,
        a failure policy's resubmission): a :attr:`Move.RERUN`, from RESETTABLE_STATES."""
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
                status=JobState.CREATED,
                move=Move.RERUN,
                remote_id=None,
                queue_state=None,
                left_queue_at=None,
                started_at=None,
                ended_at=None,
                reason=reason,
                info=_keep_attempt(current, reason),
            )

    def delete(self, job_id: str) -> None:
        """Remove a job's row (its directories must be gone already; see ``xpr rm``)."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            conn.execute("DELETE FROM state_history WHERE job_id = ?", (job_id,))

    # ------------------------------------------------------------------ helpers

    def _decode(self, row: sqlite3.Row, decode_info: bool = True) -> dict:
        """A stored row as callers see it: absolute paths, ``info`` parsed (if asked)."""
        d = dict(row)
        for column in PATH_COLUMNS:
            d[column] = to_absolute(d.get(column), self.root)
        if decode_info:
            d["info"] = json.loads(d.get("info") or "{}")
            for key in PATH_INFO_KEYS:
                if isinstance(d["info"].get(key), str):
                    d["info"][key] = to_absolute(d["info"][key], self.root)
        return d

    def _encode(self, fields: dict) -> dict:
        """Columns as stored: paths inside the project relative to the root, ``info`` JSON."""
        fields = dict(fields)
        for column, scope in PATH_COLUMNS.items():
            if fields.get(column) is not None:
                fields[column] = to_stored(str(fields[column]), self.root, scope)
        if "info" in fields:
            info = dict(fields["info"])
            for key, scope in PATH_INFO_KEYS.items():
                if isinstance(info.get(key), str):
                    info[key] = to_stored(info[key], self.root, scope)
            fields["info"] = json.dumps(info, sort_keys=True)
        return fields

    def _locked_get(self, conn: sqlite3.Connection, job_id: str) -> dict:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None:
            raise IllegalTransition(f"job {job_id!r} is not in the jobs database")
        return self._decode(row)

    def _locked_update(
        self,
        conn: sqlite3.Connection,
        current: dict,
        reason: str | None = None,
        move: Move | None = Move.LIFE,
        **fields: Any,
    ) -> dict:
        """Write ``fields`` of one row; the one place a status changes (checked here)."""
        unknown = set(fields) - _UPDATABLE - {"status"}
        if unknown:
            raise ValueError(f"unknown jobs columns {sorted(unknown)}")
        if "info" in fields:
            fields["info"] = {**current["info"], **fields["info"]}
        fields = self._encode(fields)
        now = fields["updated_at"] = time.time()
        new_status = str(fields.get("status", current["status"]))
        if "status" in fields:
            fields["status"] = new_status  # stored as the plain string
        if new_status != current["status"]:
            check_move(current["id"], current["status"], new_status, move)
            if new_status == "started" and current.get("started_at") is None:
                fields.setdefault("started_at", now)
            if new_status in FINAL_STATES and current["status"] not in FINAL_STATES:
                fields.setdefault("ended_at", now)
            if reason is None and fields.get("queue_state"):
                reason = f"queue state {fields['queue_state']}"
            _record_history(conn, current["id"], now, current["status"], new_status, reason)
        assignments = ", ".join(f"{c} = ?" for c in fields)
        conn.execute(
            f"UPDATE jobs SET {assignments} WHERE id = ?", [*fields.values(), current["id"]]
        )
        return self._decode(
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


def _record_history(
    conn: sqlite3.Connection,
    job_id: str,
    at: float,
    from_state: str | None,
    to_state: str,
    reason: str | None,
) -> None:
    conn.execute(
        "INSERT INTO state_history (job_id, at, from_state, to_state, reason)"
        " VALUES (?, ?, ?, ?, ?)",
        (job_id, at, from_state, to_state, reason),
    )


def _retry_locked(action: Any) -> Any:
    return retry_locked(action, lock_patience_s())


def _keep_attempt(row: dict, reason: str) -> dict:
    """``info`` keeping the submission a reset ends, if it is not recorded yet.

    A failure policy records the attempt itself (with its decision) before resetting; a
    user's ``xpr reset_status`` or a forced rerun does not, and without this the submission
    would be lost from ``xpr show`` and the report.
    """
    attempts = list(row["info"].get("attempts", []))
    if not row["n_submissions"] or (
        attempts and attempts[-1].get("after_submission") == row["n_submissions"]
    ):
        return {}
    return {"attempts": [*attempts, attempt_record(row, reason)]}
