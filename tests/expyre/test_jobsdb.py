"""The jobs database: state machine, compare-and-set, and two processes writing at once."""

import itertools
import subprocess
import sys
import textwrap

import pytest

from expyre.jobsdb import ALLOWED_TRANSITIONS, STATES, IllegalTransition, JobsDB, Move

# a path of allowed transitions from "created" to each state
PATH_TO = {
    "created": [],
    "submitted": ["submitted"],
    "started": ["submitted", "started"],
    "succeeded": ["submitted", "started", "succeeded"],
    "failed": ["submitted", "failed"],
    "died": ["submitted", "died"],
    "processed": ["submitted", "succeeded", "processed"],
    "stale": ["stale"],
    "cleaned": ["cleaned"],
}


def _row(i, key="k", digest="d", fp="f"):
    return {
        "id": f"job{i}",
        "name": f"n{i}",
        "key": key,
        "call_digest": digest,
        "code_fingerprint": fp,
        "stage_dir": f"/stage/job{i}",
    }


def test_schema_uses_wal_and_indexes(tmp_path):
    db = JobsDB(tmp_path / "jobs.db")
    db.create_or_reuse(_row(0))
    conn = db._connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    indexes = {r[1] for r in conn.execute("PRAGMA index_list(jobs)")}
    assert {"jobs_key", "jobs_call_digest", "jobs_status"} <= indexes


@pytest.mark.parametrize(
    ("start", "target", "move"), list(itertools.product(STATES, STATES, list(Move)))
)
def test_every_transition_allowed_or_refused(tmp_path, start, target, move):
    db = JobsDB(tmp_path / "jobs.db")
    db.create_or_reuse(_row(1))
    for step in PATH_TO[start]:
        db.transition("job1", step, move=None)
    assert db.get("job1")["status"] == start
    if move in ALLOWED_TRANSITIONS[start].get(target, Move(0)):
        assert db.transition("job1", target, move=move)["status"] == target
    else:
        with pytest.raises(IllegalTransition, match="not allowed"):
            db.transition("job1", target, move=move)
        assert db.get("job1")["status"] == start  # unchanged


def test_finished_job_goes_back_to_created_only_on_purpose(tmp_path):
    """A job's own life never sends a finished job back to created; a rerun decision does."""
    db = JobsDB(tmp_path / "jobs.db")
    db.create_or_reuse(_row(1))
    for step in PATH_TO["succeeded"]:
        db.transition("job1", step)
    with pytest.raises(IllegalTransition, match="only as rerun"):
        db.transition("job1", "created")
    assert db.reset("job1")["status"] == "created"


def test_code_change_marks_stale_through_the_table(tmp_path):
    """Marking stale is a CODE_CHANGED move: refused from a state without that edge."""
    db = JobsDB(tmp_path / "jobs.db")
    db.create_or_reuse(_row(1, fp="f1"))
    db.transition("job1", "cleaned")
    _, _, stale = db.create_or_reuse(_row(2, fp="f2"))
    assert stale == []  # cleaned jobs are not candidates
    with pytest.raises(IllegalTransition, match="only as code_changed"):
        db.transition("job2", "stale")
    _, _, stale = db.create_or_reuse(_row(3, key="k3", fp="f3"))
    assert [r["id"] for r in stale] == ["job2"]
    assert db.get("job2")["status"] == "stale"


def test_compare_and_set_and_missing_job(tmp_path):
    db = JobsDB(tmp_path / "jobs.db")
    db.create_or_reuse(_row(1))
    with pytest.raises(IllegalTransition, match="expected one of"):
        db.transition("job1", "submitted", expect=["started"])
    with pytest.raises(IllegalTransition, match="not in the jobs database"):
        db.transition("nope", "submitted")
    with pytest.raises(ValueError, match="unknown job status"):
        db.transition("job1", "exploded")
    with pytest.raises(ValueError, match="transition"):
        db.update("job1", status="started")


def test_begin_submission_exactly_once(tmp_path):
    db = JobsDB(tmp_path / "jobs.db")
    db.create_or_reuse(_row(1))
    first = db.begin_submission("job1", system="local")
    assert first["status"] == "submitted" and first["n_submissions"] == 1
    assert first["system"] == "local"
    assert db.begin_submission("job1") is None  # someone already submitted
    assert db.begin_submission("job1", allow_resubmit=True)["n_submissions"] == 2
    db.update("job1", remote_id="42")
    assert db.begin_submission("job1", allow_resubmit=True) is None  # queued: never again


def test_reuse_by_key_and_stale_on_code_change(tmp_path):
    db = JobsDB(tmp_path / "jobs.db")
    row, reused, stale = db.create_or_reuse(_row(1, key="k1", fp="f1"))
    assert not reused and not stale
    row2, reused, stale = db.create_or_reuse(_row(2, key="k1", fp="f1"))
    assert reused and row2["id"] == "job1"
    row3, reused, stale = db.create_or_reuse(_row(3, key="k2", fp="f2"))
    assert not reused and row3["id"] == "job3"
    assert [r["id"] for r in stale] == ["job1"]
    assert db.get("job1")["status"] == "stale"
    _, reused, _ = db.create_or_reuse(_row(4, key="k1", fp="f1"))  # stale rows are never reused
    assert not reused


def test_reset_and_info_merge(tmp_path):
    db = JobsDB(tmp_path / "jobs.db")
    db.create_or_reuse({**_row(1), "info": {"a": 1}})
    db.update("job1", info={"b": 2})
    assert db.get("job1")["info"] == {"a": 1, "b": 2}
    with pytest.raises(IllegalTransition, match="can be reset"):
        db.reset("job1")  # created
    db.transition("job1", "submitted", remote_id="7")
    db.transition("job1", "failed")
    row = db.reset("job1")
    assert row["status"] == "created" and row["remote_id"] is None


WRITER = textwrap.dedent(
    """
    import sys
    from expyre.jobsdb import JobsDB
    db = JobsDB(sys.argv[1])
    tag = sys.argv[2]
    ids = []
    for i in range(150):
        db.begin_submission("shared", allow_resubmit=True)
        row, _, _ = db.create_or_reuse({"id": f"{tag}{i}", "name": "x", "key": f"k{i}",
            "call_digest": f"d{i}", "code_fingerprint": "f", "stage_dir": "/s"})
        ids.append(row["id"])
    print(" ".join(ids))
    """
)


def test_two_processes_write_concurrently_without_lost_updates(tmp_path):
    path = tmp_path / "jobs.db"
    db = JobsDB(path)
    db.create_or_reuse({**_row(0), "id": "shared", "key": "shared", "call_digest": "shared"})
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), tag],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tag in ("a", "b")
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "locked" not in err
    # every read-modify-write counted: 2 x 150 submissions recorded
    assert db.get("shared")["n_submissions"] == 300
    # the same 150 calls created by both: one row each, both processes got the same ids
    ids_a, ids_b = (out.split() for out, _ in outs)
    assert ids_a == ids_b
    assert len(db.select()) == 151
