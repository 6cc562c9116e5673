"""Per-item results of queued calls, kept in the project's ``items.db``.

A queued operation over many items (a relaxation of 200 structures) runs them as jobs of
some items each. A job's key covers its whole chunk, so on its own a changed chunking, an
added input or a job that failed on one item would compute everything again. This store
keeps each item's result under its own key instead, so a rerun takes every item already
computed, whatever jobs computed it, and only the others are sent to the queue.

What the store holds (one sqlite file beside ``jobs.db``, WAL mode, every write one
transaction with ``synchronous=FULL``, so a driver killed at any instant leaves either the
whole write or none of it):

``items``
    ``key`` -> pickled result, with the ``operation`` (``module:qualname``), the digest of
    its ``arguments``, the ``code`` fingerprint, the job that computed it, its size and
    when it was stored. The key is computed by the client (wfl): expyre only stores bytes.
``claims``
    ``(job_id, position) -> item key``: which item each job computes, written before the
    job is submitted. A rerun that lacks an item asks which job computes it: a job still
    queued or running is waited for (never duplicated), a finished job whose results were
    never gathered (its driver was killed) is read now.
``runs``
    One row per queued call: how many items it reused and how many it computed
    (``xpr items`` shows them).

Two drivers may use one store at once: items are written with ``INSERT OR IGNORE`` (the
first writer wins; both computed the same value), and readers never block writers. A call
holds :meth:`ItemStore.planning` from looking up its items until its new jobs have claimed
theirs, so a second driver looks only after the first has claimed: it finds those jobs and
waits for them instead of computing the same items in a chunking of its own.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from expyre.sqlitewal import open_shared, retry_locked, write_transaction

if TYPE_CHECKING:
    from expyre.config import ProjectConfig

__all__ = ["ITEMS_DB_NAME", "ItemStore", "StoredItem", "item_store"]

#: file name of the store, in the project root beside ``jobs.db``
ITEMS_DB_NAME = "items.db"

# sqlite refuses statements with more parameters than this (older builds: 999)
_MAX_PARAMS = 900

_SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    key        TEXT PRIMARY KEY,
    operation  TEXT NOT NULL,
    arguments  TEXT NOT NULL,
    code       TEXT NOT NULL,
    value      BLOB NOT NULL,
    nbytes     INTEGER NOT NULL,
    job_id     TEXT,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS items_operation ON items (operation, arguments, code);
CREATE INDEX IF NOT EXISTS items_job ON items (job_id);
CREATE INDEX IF NOT EXISTS items_created ON items (created_at);
CREATE TABLE IF NOT EXISTS claims (
    job_id   TEXT NOT NULL,
    position INTEGER NOT NULL,
    item_key TEXT NOT NULL,
    PRIMARY KEY (job_id, position)
);
CREATE INDEX IF NOT EXISTS claims_item ON claims (item_key);
CREATE TABLE IF NOT EXISTS runs (
    at        REAL NOT NULL,
    operation TEXT NOT NULL,
    job_name  TEXT NOT NULL,
    n_items   INTEGER NOT NULL,
    n_reused  INTEGER NOT NULL,
    n_running INTEGER NOT NULL,
    n_new     INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class StoredItem:
    """One item's result to store.

    Attributes
    ----------
    key : str
        The item's key (operation, arguments, the item by value, code fingerprint).
    operation : str
        ``module:qualname`` of the operation, for ``xpr items`` and dropping by operation.
    arguments : str
        Digest of the operation's other arguments: with ``operation`` and ``code`` it tells
        which stored items an edit of the code made stale.
    code : str
        Code fingerprint the result was computed with.
    value : bytes
        The pickled result.
    job_id : str or None
        The job that computed it.
    """

    key: str
    operation: str
    arguments: str
    code: str
    value: bytes
    job_id: str | None = None


class ItemStore:
    """One project's ``items.db`` (see the module docstring).

    Parameters
    ----------
    path : path-like
        The database file; created on the first write. Reading a store that does not
        exist yet finds nothing and creates nothing.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._plan_lock = threading.Lock()  # flock is per open file: threads wait here
        self._conn: sqlite3.Connection | None = None
        self._pid = -1

    # ------------------------------------------------------------------ plumbing

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None or self._pid != os.getpid():  # never reuse across fork
            # FULL: a committed item survives a power cut, like the job that computed it
            conn = open_shared(
                self.path, busy_timeout_s=60.0, patience_s=_LOCK_PATIENCE_S, synchronous="FULL"
            )
            _retry_locked(lambda: conn.executescript(_SCHEMA))
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock, write_transaction(self._connection(), _LOCK_PATIENCE_S) as conn:
            yield conn

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection | None]:
        """A connection for reading, or None when the store does not exist (nothing stored)."""
        with self._lock:
            if self._conn is None and not self.path.exists():
                yield None
                return
            yield self._connection()

    @contextmanager
    def planning(self) -> Iterator[None]:
        """Held by one call at a time, across processes: from finding which of its items
        have no result and no job until its new jobs have claimed them.

        A lock file beside the store (``items.db.plan.lock``, ``flock``): the kernel
        releases it when its holder dies, so a killed driver never leaves it held.
        """
        with self._plan_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            lock_path = self.path.with_name(self.path.name + ".plan.lock")
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o664)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)  # releases the lock

    def close(self) -> None:
        """Close this process's connection (it reopens on next use)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    # ------------------------------------------------------------------ items

    def lookup(self, keys: Sequence[str]) -> dict[str, bytes]:
        """The stored pickled results of those of ``keys`` that have one.

        Parameters
        ----------
        keys : sequence of str
            Item keys.

        Returns
        -------
        dict
            key -> pickled result, for the keys found.
        """
        found: dict[str, bytes] = {}
        with self._reading() as conn:
            if conn is None:
                return found
            for batch in _batches(list(dict.fromkeys(keys))):
                sql = f"SELECT key, value FROM items WHERE key IN ({_marks(batch)})"
                found.update(conn.execute(sql, batch).fetchall())
        return found

    def put(self, items: Iterable[StoredItem]) -> int:
        """Store results in one transaction; an item stored already keeps its first value.

        Returns
        -------
        int
            How many items were new.
        """
        now = time.time()
        rows = [
            (i.key, i.operation, i.arguments, i.code, i.value, len(i.value), i.job_id, now)
            for i in items
        ]
        if not rows:
            return 0
        with self._transaction() as conn:
            before = conn.total_changes
            conn.executemany(
                "INSERT OR IGNORE INTO items (key, operation, arguments, code, value, nbytes,"
                " job_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            return conn.total_changes - before

    # ------------------------------------------------------------------ claims

    def claim(self, job_id: str, keys: Sequence[str]) -> None:
        """Record that job ``job_id`` computes ``keys`` (in this order), before it is submitted.

        A job created again for the same chunk (same key, so the same job) claims the same
        rows again: nothing changes.
        """
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO claims (job_id, position, item_key) VALUES (?, ?, ?)",
                [(job_id, n, key) for n, key in enumerate(keys)],
            )

    def claim_many(self, claims: Iterable[tuple[str, Sequence[str]]]) -> None:
        """:meth:`claim` for many jobs in one transaction: ``(job_id, keys)`` pairs."""
        rows = [(job_id, n, key) for job_id, keys in claims for n, key in enumerate(keys)]
        if not rows:
            return
        with self._transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO claims (job_id, position, item_key) VALUES (?, ?, ?)", rows
            )

    def claiming_jobs(self, keys: Sequence[str]) -> dict[str, list[str]]:
        """The jobs that claimed each of ``keys`` (key -> job ids; keys without a claim left out)."""
        out: dict[str, list[str]] = {}
        with self._reading() as conn:
            if conn is None:
                return out
            for batch in _batches(list(dict.fromkeys(keys))):
                sql = f"SELECT item_key, job_id FROM claims WHERE item_key IN ({_marks(batch)})"
                for key, job_id in conn.execute(sql, batch):
                    out.setdefault(key, []).append(job_id)
        return out

    def claimed_keys(self, job_id: str) -> list[str]:
        """The item keys job ``job_id`` computes, in the order of its results."""
        with self._reading() as conn:
            if conn is None:
                return []
            rows = conn.execute(
                "SELECT item_key FROM claims WHERE job_id = ? ORDER BY position", (job_id,)
            ).fetchall()
        return [r[0] for r in rows]

    def forget_jobs(self, job_ids: Iterable[str]) -> None:
        """Delete the claims of jobs that are gone (their results can no longer be read)."""
        jobs = list(dict.fromkeys(job_ids))
        if not jobs:
            return
        with self._reading() as conn:
            if conn is None:
                return
        with self._transaction() as conn:
            for batch in _batches(jobs):
                conn.execute(f"DELETE FROM claims WHERE job_id IN ({_marks(batch)})", batch)

    # ------------------------------------------------------------------ runs

    def record_run(
        self, operation: str, job_name: str, n_items: int, n_reused: int, n_running: int, n_new: int
    ) -> None:
        """Record how many items one queued call reused, waited for and computed anew."""
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO runs (at, operation, job_name, n_items, n_reused, n_running, n_new)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (time.time(), operation, job_name, n_items, n_reused, n_running, n_new),
            )

    def runs(self, limit: int = 20) -> list[dict]:
        """The latest recorded calls, newest first."""
        with self._reading() as conn:
            if conn is None:
                return []
            cur = conn.execute(
                "SELECT at, operation, job_name, n_items, n_reused, n_running, n_new FROM runs"
                " ORDER BY at DESC LIMIT ?",
                (limit,),
            )
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    # ------------------------------------------------------------------ summary and dropping

    def summary(self) -> list[dict]:
        """Per operation and code fingerprint: number of items, bytes, oldest and newest."""
        with self._reading() as conn:
            if conn is None:
                return []
            cur = conn.execute(
                "SELECT operation, code, COUNT(*), SUM(nbytes), MIN(created_at), MAX(created_at)"
                " FROM items GROUP BY operation, code ORDER BY operation, MAX(created_at)"
            )
            names = ["operation", "code", "n_items", "nbytes", "oldest", "newest"]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def drop(
        self,
        operation: str | None = None,
        older_than_s: float | None = None,
        job_ids: Iterable[str] | None = None,
        dry_run: bool = False,
    ) -> int:
        """Delete stored items (and the claims of them), all filters applying together.

        Parameters
        ----------
        operation : str, optional
            Regular expression matched (``re.search``) against ``module:qualname``.
        older_than_s : float, optional
            Only items stored more than this many seconds ago.
        job_ids : iterable of str, optional
            Only items computed by these jobs (their claims go too).
        dry_run : bool
            Count only.

        Returns
        -------
        int
            Number of items deleted (or that would be).
        """
        clauses: list[str] = []
        params: list = []
        with self._reading() as conn:
            if conn is None:
                return 0
            if operation is not None:
                pattern = re.compile(operation)
                ops = [r[0] for r in conn.execute("SELECT DISTINCT operation FROM items")]
                chosen = [op for op in ops if pattern.search(op)]
                if not chosen:
                    return 0
                clauses.append(f"operation IN ({_marks(chosen)})")
                params += chosen
        if older_than_s is not None:
            clauses.append("created_at < ?")
            params.append(time.time() - older_than_s)
        jobs = None if job_ids is None else list(dict.fromkeys(job_ids))
        if jobs is not None and not jobs:
            return 0
        where = " AND ".join(clauses) or "1"
        total = 0
        for batch in _batches(jobs) if jobs is not None else [None]:
            batch_where = where if batch is None else f"{where} AND job_id IN ({_marks(batch)})"
            batch_params = params if batch is None else [*params, *batch]
            total += self._drop_where(batch_where, batch_params, dry_run)
        if jobs is not None and not dry_run:
            with self._transaction() as conn:
                for batch in _batches(jobs):
                    conn.execute(f"DELETE FROM claims WHERE job_id IN ({_marks(batch)})", batch)
        return total

    def _drop_where(self, where: str, params: list, dry_run: bool) -> int:
        if dry_run:
            with self._reading() as conn:
                return conn.execute(f"SELECT COUNT(*) FROM items WHERE {where}", params).fetchone()[
                    0
                ]
        with self._transaction() as conn:
            # claims of dropped items go with them: a rerun must compute a dropped item again,
            # not read it back from the job that once computed it
            conn.execute(
                f"DELETE FROM claims WHERE item_key IN (SELECT key FROM items WHERE {where})",
                params,
            )
            return conn.execute(f"DELETE FROM items WHERE {where}", params).rowcount

    def drop_stale(self, operation: str, arguments: str, code: str) -> int:
        """Delete items of the same operation and arguments computed by other code.

        Such items can never be reused (their keys hold the old code fingerprint): this is
        the item store's side of a job becoming stale when its code is edited.

        Returns
        -------
        int
            Number of items deleted.
        """
        return self._drop_where(
            "operation = ? AND arguments = ? AND code != ?", [operation, arguments, code], False
        )


def _marks(values: Sequence) -> str:
    return ",".join("?" * len(values))


def _batches(values: list) -> Iterator[list]:
    for start in range(0, len(values), _MAX_PARAMS):
        yield values[start : start + _MAX_PARAMS]


_LOCK_PATIENCE_S = 600.0  # how long a write waits for another process's lock


def _retry_locked(action):
    return retry_locked(action, _LOCK_PATIENCE_S)


_STORES: dict[str, ItemStore] = {}
_STORES_LOCK = threading.Lock()


def item_store(config: ProjectConfig | None = None) -> ItemStore:
    """The (per-process cached) item store of a project scope (default: the current one)."""
    if config is None:
        from expyre.config import load_config

        config = load_config()
    path = config.root / ITEMS_DB_NAME
    with _STORES_LOCK:
        store = _STORES.get(str(path))
        if store is None:
            store = _STORES[str(path)] = ItemStore(path)
    return store
