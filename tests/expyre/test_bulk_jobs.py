"""Many jobs at once: staged with one sync, submitted and refreshed in bulk, nothing lost.

An operation creates its jobs inside :func:`expyre.stagedir.staging_batch`: their calls are
written without a flush each and recorded ``staged`` together after one sync. A driver killed
inside the batch must leave jobs that a rerun stages again (never a row claiming a call that
may not be on disk), and a poll of many jobs reads their rows in one query.
"""

import os
import subprocess
import sys
import textwrap

import pytest
from expyre_testutil import square

from expyre.func import ExPyRe, jobs_db
from expyre.jobsdb import JobsDB
from expyre.packing import start_packed
from expyre.poll import wait_for_jobs
from expyre.stagedir import active_batch, staging_batch

ONE_CORE = {"num_cores": 1, "max_time": "10m"}


def test_jobs_of_a_batch_are_staged_only_when_it_ends(project):
    with staging_batch():
        jobs = [ExPyRe(f"b{i}", function=square, args=[i]) for i in range(3)]
        assert all(not job.row["info"].get("staged") for job in jobs)
        with pytest.raises(RuntimeError, match="no staged call"):
            jobs[0].start(ONE_CORE, partial_node=True)  # its call may not be on disk yet
    assert active_batch() is None
    assert all(row["info"]["staged"] for row in jobs_db().select())
    assert all(job.row["info"]["staged"] for job in jobs)
    assert all((job.stage_dir / "_expyre_call.pkl").is_file() for job in jobs)


def test_a_batch_that_raises_leaves_its_jobs_unstaged_and_a_rerun_stages_them(project):
    with pytest.raises(KeyError), staging_batch():
        ExPyRe("half", function=square, args=[7])
        raise KeyError("the driver failed while creating jobs")
    (row,) = jobs_db().select()
    assert not row["info"].get("staged")
    job = ExPyRe("half", function=square, args=[7])  # the rerun: same call, same job
    assert job.id == row["id"] and job.row["info"]["staged"]
    assert job.start(ONE_CORE, partial_node=True).get_results(timeout=300)[0] == 49


KILLED_DRIVER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, sys.argv[1])
    from expyre_testutil import square
    from expyre.func import ExPyRe
    from expyre.stagedir import staging_batch

    with staging_batch():
        for i in range(4):
            ExPyRe(f"k{i}", function=square, args=[i])
            if i == 2:
                os.kill(os.getpid(), signal.SIGKILL)  # mid-batch: no sync, no mark
    """
)


def test_a_driver_killed_mid_batch_leaves_jobs_a_rerun_stages_and_runs(project, tmp_path):
    script = tmp_path / "killed.py"
    script.write_text(KILLED_DRIVER)
    testutil_dir = os.path.dirname(sys.modules["expyre_testutil"].__file__)
    proc = subprocess.run([sys.executable, str(script), testutil_dir], cwd=os.getcwd())
    assert proc.returncode == -9
    rows = jobs_db().select()
    assert len(rows) == 3 and not any(r["info"].get("staged") for r in rows)
    with staging_batch():
        jobs = [ExPyRe(f"k{i}", function=square, args=[i]) for i in range(4)]
    assert {j.id for j in jobs[:3]} == {r["id"] for r in rows}  # reused, not duplicated
    start_packed(jobs, ONE_CORE, 2, partial_node=True)
    done = list(wait_for_jobs(jobs, timeout=600))
    assert sorted(j.get_results(timeout=0)[0] for j in done) == [0, 1, 4, 9]
    assert all(r["n_submissions"] == 1 for r in jobs_db().select())


def test_a_pack_records_its_submissions_in_bulk_and_once(project):
    with staging_batch():
        jobs = [ExPyRe(f"p{i}", function=square, args=[i]) for i in range(5)]
    ids = start_packed(jobs, ONE_CORE, 2, partial_node=True)
    assert len(ids) == 2
    rows = jobs_db().select()
    assert {r["remote_id"] for r in rows} == {"pack:" + "+".join(ids)}
    assert all(r["status"] in ("submitted", "started", "succeeded") for r in rows)
    assert start_packed(jobs, ONE_CORE, 2, partial_node=True) == []  # never twice
    done = list(wait_for_jobs(jobs, timeout=600))
    assert sorted(j.get_results(timeout=0)[0] for j in done) == [0, 1, 4, 9, 16]
    assert all(r["n_submissions"] == 1 for r in jobs_db().select())


def test_refresh_all_rereads_only_changed_rows_and_reports_deleted_ones(project):
    jobs = [ExPyRe(f"r{i}", function=square, args=[i]) for i in range(3)]
    other = ExPyRe.from_jobsdb(jobs_db().get(jobs[1].id))[0]
    other.update_info({"note": "changed elsewhere"})
    before = [dict(job.row) for job in jobs]
    ExPyRe.refresh_all(jobs)
    assert jobs[1].row["info"]["note"] == "changed elsewhere"
    assert jobs[0].row == before[0] and jobs[2].row == before[2]
    jobs_db().delete(jobs[2].id)
    with pytest.raises(RuntimeError, match="deleted"):
        ExPyRe.refresh_all(jobs)


def test_changed_rows_handles_more_ids_than_one_query_takes(tmp_path):
    db = JobsDB(tmp_path / "jobs.db")
    for i in range(1000):
        db.create_or_reuse(
            {"id": f"j{i}", "name": "j", "key": f"k{i}", "call_digest": f"c{i}",
             "code_fingerprint": "f", "stage_dir": str(tmp_path / f"j{i}")}
        )  # fmt: skip
    seen = {r["id"]: r["updated_at"] for r in db.select()}
    assert db.changed_rows(seen) == {}
    db.update("j950", info={"x": 1})
    seen["gone"] = 0.0
    changed = db.changed_rows(seen)
    assert set(changed) == {"j950", "gone"}
    assert changed["j950"]["info"] == {"x": 1} and changed["gone"] is None
