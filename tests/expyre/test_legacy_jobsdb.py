"""``expyre.config.db``: the jobs database with expyre-wfl 0.1.6's methods."""

import pytest
from expyre_testutil import square

import expyre.config
from expyre.func import ExPyRe, jobs_db
from expyre.jobsdb import IllegalTransition
from expyre.legacy_jobsdb import LegacyJobsDB

ONE_CORE = {"num_cores": 1, "max_time": "10m"}


def test_jobs_select_like_0_1_6(project):
    done = ExPyRe("sq_a", function=square, args=[2]).start(ONE_CORE, partial_node=True)
    done.get_results(timeout=300)
    waiting = ExPyRe("sq_b", function=square, args=[3])  # created, never started
    db = expyre.config.db
    assert isinstance(db, LegacyJobsDB)
    rows = {r["id"]: r for r in db.jobs()}
    assert set(rows) == {done.id, waiting.id}
    row = rows[done.id]
    assert row["from_dir"] == str(done.stage_dir) and row["system"] == "local"
    assert row["status"] == "succeeded" and row["remote_status"] == "completed"
    assert len(row["creation_time"]) == 19  # "YYYY-MM-DD HH:MM:SS", as 0.1.6 printed it
    assert isinstance(next(db.jobs(readable=False))["creation_time"], float)
    # statuses, status groups, and whole-value regular expressions
    assert [r["id"] for r in db.jobs(status="ongoing")] == [waiting.id]
    assert [r["id"] for r in db.jobs(status=["succeeded"])] == [done.id]
    assert [r["id"] for r in db.jobs(name="sq_.*", status="can_produce_results")] == [
        done.id,
        waiting.id,
    ]
    assert list(db.jobs(name="sq")) == []  # a regexp must match the whole name
    assert [r["id"] for r in db.jobs(id=[done.id], system="loc.*")] == [done.id]
    with pytest.raises(ValueError, match="unknown status"):
        list(db.jobs(status="finished"))
    with pytest.raises(ValueError, match="bad regular expression"):
        list(db.jobs(name="sq_("))
    assert done.id in str(db)


def test_add_update_remove(project, tmp_path):
    db = expyre.config.db
    db.add("manual_1", "manual", str(tmp_path / "m1"), system="local")
    with pytest.raises(ValueError, match="already exists"):
        db.add("manual_1", "manual", str(tmp_path / "m1"))
    row = jobs_db().get("manual_1")
    assert row["status"] == "created" and row["stage_dir"] == str(tmp_path / "m1")
    # 0.1.6's column names are translated; a status change follows the database's rules
    db.update("manual_1", remote_status="queued", remote_id="77")
    row = jobs_db().get("manual_1")
    assert (row["queue_state"], row["remote_id"]) == ("queued", "77")
    db.update("manual_1", status="submitted")
    assert jobs_db().get("manual_1")["status"] == "submitted"
    with pytest.raises(IllegalTransition, match="cannot become 'processed'"):
        db.update("manual_1", status="processed")  # a queued job is not finished
    db.update("manual_1", status="created")  # back, as xpr reset_status
    assert jobs_db().get("manual_1")["status"] == "created"
    with pytest.raises(ValueError, match="found 0"):
        db.update("nope", status="failed")
    db.remove("manual_1")
    assert jobs_db().get("manual_1") is None
    with pytest.raises(ValueError, match="found 0"):
        db.remove("manual_1")


def test_unlock_keeps_every_job(project):
    job = ExPyRe("sq_u", function=square, args=[4]).start(ONE_CORE, partial_node=True)
    assert job.get_results(timeout=300)[0] == 16
    expyre.config.db.unlock()
    assert [r["id"] for r in expyre.config.db.jobs(status="succeeded")] == [job.id]
    # 0.1.6's way back from rows to jobs: always a list
    (again,) = ExPyRe.from_jobsdb(next(expyre.config.db.jobs(id=job.id)))
    assert again.get_results(timeout=0)[0] == 16
    assert [j.id for j in ExPyRe.from_jobsdb(expyre.config.db.jobs())] == [job.id]
