"""``xpr`` on a database with real jobs (click's CliRunner and the installed console script)."""

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from expyre_testutil import fail_with, sleep_then, square

from expyre.cli import cli
from expyre.func import ExPyRe, RemoteJobError, jobs_db

ONE_CORE = {"num_cores": 1, "max_time": "10m"}


@pytest.fixture
def jobs(project):
    """Two succeeded jobs, one failed, one still running."""
    done = [
        ExPyRe(f"sq{i}", function=square, args=[i]).start(ONE_CORE, partial_node=True)
        for i in range(2)
    ]
    bad = ExPyRe("bad", function=fail_with, args=["no"]).start(ONE_CORE, partial_node=True)
    for job in done:
        job.get_results(timeout=300)
    with pytest.raises(RemoteJobError):
        bad.get_results(timeout=300)
    running = ExPyRe("sleeper", function=sleep_then, args=[300, 0]).start(
        ONE_CORE, partial_node=True
    )
    return {"done": done, "bad": bad, "running": running}


def _xpr(*args, input=None):
    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
    return result


def test_ls_table_filters_and_json(jobs):
    out = _xpr("ls").output
    assert out.splitlines()[0].split()[:3] == ["ID", "NAME", "STATUS"]
    for job in [*jobs["done"], jobs["bad"], jobs["running"]]:
        assert job.id in out
    assert "4 job(s)" in out
    failed = _xpr("ls", "--status", "failed").output
    assert jobs["bad"].id in failed and jobs["done"][0].id not in failed
    rows = json.loads(_xpr("ls", "--json", "--name", "sq.*").output)
    assert sorted(r["id"] for r in rows) == sorted(j.id for j in jobs["done"])
    assert {r["status"] for r in rows} == {"succeeded"}
    listed = _xpr("ls", "--status", "failed,succeeded", "-l").output
    assert "STAGE_DIR" in listed and str(jobs["bad"].stage_dir) in listed
    assert "no matching jobs" in _xpr("ls", "--id", "nothing-like-this").output


def test_reset_status_needs_a_filter_and_resets(jobs):
    result = _xpr("reset_status")
    assert result.exit_code != 0 and "at least one filter" in result.output
    result = _xpr("reset_status", "--status", "failed", "-y")
    assert result.exit_code == 0, result.output
    assert jobs_db().get(jobs["bad"].id)["status"] == "created"
    # live jobs are never reset behind the queue's back
    _xpr("reset_status", "--name", "sleeper", "-y")
    assert jobs_db().get(jobs["running"].id)["status"] in ("submitted", "started")


def test_rm_deletes_dirs_then_rows_and_cancels_only_with_c(jobs):
    done = jobs["done"][0]
    result = _xpr("rm", "--id", done.id, input="n\n")
    assert result.exit_code != 0 and jobs_db().get(done.id) is not None  # declined
    assert _xpr("rm", "--id", done.id, "-y").exit_code == 0
    assert jobs_db().get(done.id) is None and not done.stage_dir.exists()

    running = jobs["running"]
    out = _xpr("rm", "--name", "sleeper", "-y").output
    assert "use -c" in out and jobs_db().get(running.id) is not None
    assert _xpr("rm", "--name", "sleeper", "-c", "-y").exit_code == 0
    assert jobs_db().get(running.id) is None and not running.stage_dir.exists()


def test_rm_keeps_row_whose_dirs_cannot_be_deleted(jobs):
    job = jobs["done"][1]
    # a run directory outside the system's rundir is refused, so the row must stay
    jobs_db().update(job.id, remote_dir="/definitely/not/a/rundir/x")
    result = _xpr("rm", "--id", job.id, "-y")
    assert "kept" in result.output and "refusing" in result.output
    assert jobs_db().get(job.id) is not None


def test_sync_records_finished_jobs(project):
    job = ExPyRe("quick", function=square, args=[3]).start(ONE_CORE, partial_node=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        out = _xpr("sync").output
        if jobs_db().get(job.id)["status"] == "succeeded":
            break
        time.sleep(0.5)
    assert "synced" in out
    assert jobs_db().get(job.id)["status"] == "succeeded"


def test_clear_message_outside_a_project(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EXPYRE_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    for command in ("sync", "ls"):
        result = CliRunner().invoke(cli, [command])
        assert result.exit_code == 1
        assert "not an expyre project" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "home" / ".expyre" / "jobs.db").exists()  # nothing created


def test_db_unlock_on_healthy_db(jobs):
    assert "not locked" in _xpr("db_unlock").output


def test_console_script_lists_jobs(jobs):
    xpr = Path(sys.executable).with_name("xpr")
    out = subprocess.run(
        [str(xpr), "ls", "--status", "succeeded"], capture_output=True, text=True, check=True
    )
    assert all(job.id in out.stdout for job in jobs["done"])
