"""The jobs database's layout version: migration of older databases, state history, run times,
and clear errors (with the fix) for a corrupt database or one whose lock is never released."""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from expyre_testutil import square

from expyre.dbrepair import rebuild
from expyre.dbschema import SCHEMA_VERSION
from expyre.func import ExPyRe, jobs_db
from expyre.jobsdb import JobsDB, JobsDBError

ONE_CORE = {"num_cores": 1, "max_time": "10m"}

# The layout of jobs.db before its version was recorded, verbatim, as databases written by
# that code exist on users' disks (deliberately not imported from the package: this test
# must keep describing those files even if the package's own copy changes).
LAYOUT_BEFORE_VERSIONS = """
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
OLD_COLUMNS = [
    "id", "name", "key", "call_digest", "code_fingerprint", "system", "status", "remote_id",
    "stage_dir", "remote_dir", "queue_state", "n_submissions", "created_at", "submitted_at",
    "updated_at", "left_queue_at", "info",
]  # fmt: skip


def _old_database(path, rows):
    """Write a database exactly as the code before layout versions did."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.executescript(LAYOUT_BEFORE_VERSIONS)
    for row in rows:
        conn.execute(
            f"INSERT INTO jobs ({','.join(OLD_COLUMNS)}) VALUES ({','.join('?' * len(OLD_COLUMNS))})",
            [row.get(c) for c in OLD_COLUMNS],
        )
    conn.close()


def _old_row(i, status, **extra):
    return {
        "id": f"job{i}", "name": f"n{i}", "key": f"k{i}", "call_digest": f"d{i}",
        "code_fingerprint": "f", "status": status, "stage_dir": f"/stage/job{i}",
        "n_submissions": 0, "created_at": 100.0 + i, "updated_at": 200.0 + i, "info": "{}",
        **extra,
    }  # fmt: skip


def test_new_database_records_version_history_and_run_times(tmp_path):
    db = JobsDB(tmp_path / "jobs.db")
    db.create_or_reuse({**_old_row(1, "created"), "info": {}})
    assert db.schema_version() == SCHEMA_VERSION
    row = db.begin_submission("job1", system="local")
    assert row["started_at"] is None and row["ended_at"] is None
    row = db.transition("job1", "started", queue_state="running")
    assert row["started_at"] is not None and row["ended_at"] is None
    row = db.transition("job1", "failed", reason="the function raised")
    assert row["ended_at"] >= row["started_at"]
    assert row["failure_category"] is None
    db.update("job1", failure_category="user_code")
    assert db.get("job1")["failure_category"] == "user_code"
    steps = [(h["from_state"], h["to_state"], h["reason"]) for h in db.history("job1")]
    assert steps == [
        (None, "created", "created"),
        ("created", "submitted", "submission 1"),
        ("submitted", "started", "queue state running"),
        ("started", "failed", "the function raised"),
    ]
    row = db.reset("job1")
    assert row["started_at"] is None and row["ended_at"] is None
    assert db.history("job1")[-1]["to_state"] == "created"
    db.delete("job1")
    assert db.history("job1") == []


def test_history_is_written_in_the_same_transaction_as_the_state_change(tmp_path):
    db = JobsDB(tmp_path / "jobs.db")
    db.create_or_reuse({**_old_row(1, "created"), "info": {}})
    with pytest.raises(ValueError, match="unknown jobs columns"):
        db.transition("job1", "submitted", no_such_column=1)  # fails inside the transaction
    assert db.get("job1")["status"] == "created"
    assert [h["to_state"] for h in db.history("job1")] == ["created"]  # nothing half-written


def test_stale_marking_is_recorded_with_its_reason(tmp_path):
    db = JobsDB(tmp_path / "jobs.db")
    db.create_or_reuse({**_old_row(1, "created"), "code_fingerprint": "a" * 20, "info": {}})
    db.create_or_reuse(
        {**_old_row(2, "created"), "call_digest": "d1", "code_fingerprint": "b" * 20, "info": {}}
    )
    last = db.history("job1")[-1]
    assert (last["from_state"], last["to_state"]) == ("created", "stale")
    assert "aaaaaaaaaaaa -> bbbbbbbbbbbb" in last["reason"]


def test_database_from_before_versions_is_migrated_in_place(tmp_path):
    path = tmp_path / "jobs.db"
    _old_database(
        path,
        [
            _old_row(1, "created"),
            _old_row(2, "submitted", remote_id="12", system="local"),
            _old_row(3, "succeeded", remote_id="13", left_queue_at=150.0),
            _old_row(4, "processed", remote_id="14", left_queue_at=160.0),
        ],
    )
    db = JobsDB(path)
    assert db.schema_version() == SCHEMA_VERSION
    rows = {r["id"]: r for r in db.select()}
    assert {i: r["status"] for i, r in rows.items()} == {
        "job1": "created", "job2": "submitted", "job3": "succeeded", "job4": "processed",
    }  # fmt: skip
    assert rows["job2"]["remote_id"] == "12" and rows["job3"]["ended_at"] == 150.0
    assert rows["job1"]["ended_at"] is None and rows["job1"]["failure_category"] is None
    assert [(h["from_state"], h["to_state"]) for h in db.history("job3")] == [(None, "succeeded")]
    # the migrated jobs keep working
    db.transition("job2", "started")
    db.transition("job2", "succeeded")
    assert [h["to_state"] for h in db.history("job2")] == ["submitted", "started", "succeeded"]
    assert db.create_or_reuse(
        {**_old_row(9, "created"), "key": "k3", "call_digest": "d3", "info": {}}
    )[1]
    db.close()
    # reopening does not migrate again
    db2 = JobsDB(path)
    assert len(db2.history("job3")) == 1
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


MIGRATE_AT_ONCE = textwrap.dedent(
    """
    import sys, time
    from expyre.jobsdb import JobsDB
    while time.time() < float(sys.argv[2]):
        time.sleep(0.001)
    db = JobsDB(sys.argv[1])
    print(db.schema_version(), len(db.select()))
    """
)


def test_two_processes_opening_an_old_database_at_once_migrate_it_once(tmp_path):
    path = tmp_path / "jobs.db"
    _old_database(path, [_old_row(i, "succeeded") for i in range(50)])
    go = str(time.time() + 2.0)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE_AT_ONCE, str(path), go],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(3)
    ]
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.split() == [str(SCHEMA_VERSION), "50"]
    db = JobsDB(path)
    assert all(len(db.history(f"job{i}")) == 1 for i in range(50))


def test_real_job_in_a_database_from_before_versions_is_reused_after_migration(project):
    job = ExPyRe("sq", function=square, args=[7]).start(ONE_CORE, partial_node=True)
    assert job.get_results(timeout=600)[0] == 49
    rows = [
        {c: (r[c] if c != "info" else __import__("json").dumps(r["info"])) for c in OLD_COLUMNS}
        for r in jobs_db().select()
    ]
    jobs_db().close()
    for suffix in ("", "-wal", "-shm"):
        (project / f"jobs.db{suffix}").unlink(missing_ok=True)
    _old_database(project / "jobs.db", rows)
    again = ExPyRe("sq", function=square, args=[7])  # the same call: the old job is reused
    assert again.id == job.id and again.status == "succeeded"
    assert again.get_results(timeout=0)[0] == 49
    assert jobs_db().schema_version() == SCHEMA_VERSION


def test_database_from_a_newer_expyre_is_refused_untouched(tmp_path):
    path = tmp_path / "jobs.db"
    JobsDB(path).create_or_reuse({**_old_row(1, "created"), "info": {}})
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    conn.close()
    with pytest.raises(JobsDBError, match=r"newer expyre.*Upgrade expyre"):
        JobsDB(path).select()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 5


def test_corrupt_database_error_names_the_file_and_the_repair(tmp_path):
    path = tmp_path / "jobs.db"
    path.write_bytes(b"this is not sqlite at all " * 200)
    with pytest.raises(JobsDBError) as info:
        JobsDB(path).select()
    message = str(info.value)
    assert str(path) in message and "corrupt" in message
    assert f"python -m expyre.dbrepair {path}" in message
    repaired = subprocess.run(
        [sys.executable, "-m", "expyre.dbrepair", str(path)], capture_output=True, text=True
    )
    assert repaired.returncode == 0, repaired.stderr
    assert list(tmp_path.glob("jobs.db.broken-*"))  # the damaged file is kept
    db = JobsDB(path)
    assert db.select() == [] and db.schema_version() == SCHEMA_VERSION


def test_damaged_pages_lose_only_their_rows(tmp_path):
    path = tmp_path / "jobs.db"
    db = JobsDB(path)
    for i in range(400):
        db.create_or_reuse({**_old_row(i, "created"), "info": {"pad": "x" * 300}})
    db.close()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    data = bytearray(path.read_bytes())
    page = 4096
    middle = (len(data) // page // 2) * page
    data[middle : middle + page] = b"\xff" * page  # one page in the middle overwritten
    path.write_bytes(bytes(data))
    with pytest.raises(JobsDBError, match="corrupt"):
        for i in range(400):
            JobsDB(path).get(f"job{i}")
        JobsDB(path).select()
    counts = rebuild(path)
    assert 0 < counts["jobs"] < 400 and counts["unreadable"] > 0
    db = JobsDB(path)
    assert len(db.select()) == counts["jobs"]
    db.transition(db.select()[0]["id"], "submitted")  # usable again


HOLD_LOCK = textwrap.dedent(
    """
    import sqlite3, sys
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("LOCKED", flush=True)
    sys.stdin.read()
    """
)
WRITE_ONCE = textwrap.dedent(
    """
    import sys
    from expyre.jobsdb import JobsDB, JobsDBError
    try:
        JobsDB(sys.argv[1]).transition("job1", "submitted")
    except JobsDBError as exc:
        print(exc)
        sys.exit(3)
    """
)


def test_lock_that_is_never_released_is_a_clear_error_and_repair_frees_it(tmp_path):
    # A process that died holding the lock keeps it only on filesystems that do not release
    # dead processes' locks (NFS); here a stopped process stands in for it: it holds the
    # write lock and will never release it by itself.
    path = tmp_path / "jobs.db"
    JobsDB(path).create_or_reuse({**_old_row(1, "created"), "info": {}})
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        os.kill(holder.pid, signal.SIGSTOP)
        env = {**os.environ, "EXPYRE_DB_LOCK_PATIENCE": "2"}
        blocked = subprocess.run(
            [sys.executable, "-c", WRITE_ONCE, str(path)], capture_output=True, text=True,
            env=env, timeout=300,
        )  # fmt: skip
        assert blocked.returncode == 3, blocked.stderr
        assert "stayed locked" in blocked.stdout and str(path) in blocked.stdout
        assert "python -m expyre.dbrepair" in blocked.stdout
        assert "Traceback" not in blocked.stderr
        counts = rebuild(path)  # readers are not blocked by the held write lock
        assert counts == {"jobs": 1, "history": 1, "unreadable": 0}
        unblocked = subprocess.run(
            [sys.executable, "-c", WRITE_ONCE, str(path)], capture_output=True, text=True,
            env=env, timeout=300,
        )  # fmt: skip
        assert unblocked.returncode == 0, unblocked.stdout + unblocked.stderr
        assert JobsDB(path).get("job1")["status"] == "submitted"
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
