"""ExPyRe methods and keywords of expyre-wfl 0.1.6, on the embedded local queue.

``start(python_cmd=...)`` (one job's own python), ``clean(dry_run=, remote_only=,
verbose=)`` and ``sync_remote_results_status``.
"""

import shlex
import sys
import time
from pathlib import Path

import pytest
from expyre_testutil import local_system, report_env, sleep_then, square, write_config, write_output

from expyre import runner
from expyre.func import ExPyRe, jobs_db
from expyre.preflight import PreflightError

ONE_CORE = {"num_cores": 1, "max_time": "10m"}


def test_python_cmd_runs_this_job_with_another_python(project):
    # `env NAME=value python`: the job sees NAME only if it ran with this python_cmd
    python_cmd = f"env EXPYRE_TEST_WHICH_PYTHON=per-job {shlex.quote(sys.executable)}"
    job = ExPyRe("py", function=report_env, args=[["EXPYRE_TEST_WHICH_PYTHON"]])
    job.start(ONE_CORE, partial_node=True, python_cmd=python_cmd)
    assert job.get_results(timeout=300)[0][0] == {"EXPYRE_TEST_WHICH_PYTHON": "per-job"}
    assert python_cmd in (job.stage_dir / runner.SCRIPT_FILE).read_text()
    # kept with the job: a rerun without the keyword still uses it
    job.start(ONE_CORE, partial_node=True, force_rerun=True)
    assert job.get_results(timeout=300)[0][0] == {"EXPYRE_TEST_WHICH_PYTHON": "per-job"}
    # another job without it uses the system's python
    # (another call: the same call would be the same job, reused)
    other = ExPyRe("py2", function=report_env, args=[["EXPYRE_TEST_WHICH_PYTHON", "NONE"]])
    other.start(ONE_CORE, partial_node=True)
    assert other.get_results(timeout=300)[0][0]["EXPYRE_TEST_WHICH_PYTHON"] is None


def test_python_cmd_that_cannot_run_jobs_fails_before_submitting(project, tmp_path):
    job = ExPyRe("badpy", function=square, args=[3])
    with pytest.raises(PreflightError, match="no-such-python"):
        job.start(ONE_CORE, partial_node=True, python_cmd=str(tmp_path / "no-such-python"))
    assert job.refresh().status == "created"  # nothing queued
    with pytest.raises(ValueError, match="python_cmd=''"):
        job.start(ONE_CORE, partial_node=True, python_cmd="")


def _finished_job_in_separate_rundir(project, tmp_path):
    rundir = tmp_path / "scratch"
    write_config(project, {"two": local_system(num_cores=2, rundir=str(rundir))})
    Path("in.txt").write_text("data")
    job = ExPyRe("far", function=write_output, args=["made.txt", "x"], input_files=["in.txt"])
    job.start(ONE_CORE, partial_node=True)
    assert job.get_results(timeout=300)[0] == "ok"
    return job, rundir / job._db.project_id / job.id  # run dirs are kept per project


def test_clean_dry_run_changes_nothing(project, tmp_path, capsys):
    job, job_dir = _finished_job_in_separate_rundir(project, tmp_path)
    listed = job.clean(wipe=True, dry_run=True)
    assert any(str(job_dir) in what for what in listed)
    assert any(str(job.stage_dir) in what for what in listed)
    out = capsys.readouterr().out
    assert out.count("would delete") == len(listed) == 2
    assert job_dir.exists() and job.stage_dir.exists() and job.refresh().status == "succeeded"
    assert job.get_results(timeout=0)[0] == "ok"


def test_clean_remote_only_keeps_local_files_and_state(project, tmp_path, capsys):
    job, job_dir = _finished_job_in_separate_rundir(project, tmp_path)
    listed = job.clean(wipe=True, remote_only=True, verbose=True)
    assert listed == [f"remote run directory {job_dir} on system 'two'"]
    assert "deleting remote run directory" in capsys.readouterr().out
    assert not job_dir.exists()
    assert (job.stage_dir / "in.txt").exists() and job.refresh().status == "succeeded"
    assert job.get_results(timeout=0)[0] == "ok"
    job.clean()  # the plain clean after it: staged inputs go, results stay
    assert not (job.stage_dir / "in.txt").exists() and job.get_results(timeout=0)[0] == "ok"


def _sync_until_finished(job, **kw):
    for _ in range(600):  # generous: the machine is shared
        job.sync_remote_results_status(**kw)
        if job.status == "succeeded":
            return
        time.sleep(0.5)
    raise AssertionError(f"{job} did not finish")


def _db_status(job):
    return jobs_db().get(job.id)["status"]


def test_sync_all_updates_the_other_jobs_of_the_system(project):
    a, b = (
        ExPyRe(f"s{i}", function=square, args=[i]).start(ONE_CORE, partial_node=True)
        for i in (1, 2)
    )
    _sync_until_finished(a)
    # b ran as quickly as a; one more sync of a covers it too, without anyone asking b
    for _ in range(600):
        if _db_status(b) == "succeeded":
            break
        a.sync_remote_results_status()
        time.sleep(0.5)
    assert _db_status(b) == "succeeded"
    assert b.refresh().get_results(timeout=0)[0] == 4  # its files were copied back


def test_sync_of_one_job_leaves_the_others_alone(project):
    slow = ExPyRe("slow", function=sleep_then, args=[600, 0]).start(ONE_CORE, partial_node=True)
    quick = ExPyRe("quick", function=square, args=[3]).start(ONE_CORE, partial_node=True)
    _sync_until_finished(quick, sync_all=False, verbose=True)
    assert quick.get_results(timeout=0)[0] == 9
    assert _db_status(slow) == "submitted"  # never asked about: still as recorded
    slow.cancel()


def test_force_sync_copies_a_finished_job_again(project, tmp_path, capsys):
    job, job_dir = _finished_job_in_separate_rundir(project, tmp_path)
    (job_dir / "made.txt").write_text("edited there")
    job.sync_remote_results_status(sync_all=False)
    assert (job.stage_dir / "made.txt").read_text() == "x"  # finished: not copied again
    job.sync_remote_results_status(sync_all=False, force_sync=True)
    assert (job.stage_dir / "made.txt").read_text() == "edited there"
