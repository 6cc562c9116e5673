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


@pytest.fixture(autouse=True)
def _wide_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")  # whole ids in tables; narrow widths tested apart


def test_ls_table_filters_and_json(jobs):
    out = _xpr("ls").output
    assert out.split()[:3] == ["ID", "NAME", "STATUS"]
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


def _ids(output: str, jobs) -> set[str]:
    everything = [*jobs["done"], jobs["bad"], jobs["running"]]
    return {j.id for j in everything if j.id in output}


def test_ls_reference_short_flags_lists_and_groups(jobs):
    done, bad, running = jobs["done"], jobs["bad"], jobs["running"]
    assert _ids(_xpr("ls", "-s", "failed").output, jobs) == {bad.id}
    assert _ids(_xpr("ls", "-s", "ongoing").output, jobs) == {running.id}
    assert _ids(_xpr("ls", "-n", "sq0,bad").output, jobs) == {done[0].id, bad.id}
    assert _ids(_xpr("ls", "-i", f"{done[1].id},sleeper_.*").output, jobs) == {
        done[1].id,
        running.id,
    }
    assert _ids(_xpr("ls", "-S", "loc.*", "-s", "succeeded").output, jobs) == {j.id for j in done}
    assert _ids(_xpr("ls", "-S", "slurm").output, jobs) == set()
    long = _xpr("ls", "-l", "-i", bad.id).output
    assert str(bad.stage_dir) in long and "CREATED" in long
    # the same selections with our long option names
    assert _ids(_xpr("ls", "--status", "ongoing").output, jobs) == {running.id}
    assert _ids(_xpr("ls", "--name", "sq.*", "--long-output").output, jobs) == {j.id for j in done}


def test_unknown_status_is_an_error_listing_valid_ones(jobs):
    for command in (["ls"], ["rm", "-y"], ["sync"], ["reset_status"]):
        result = CliRunner().invoke(cli, [*command, "-s", "finshed"])
        assert result.exit_code == 2, (command, result.output)
        assert "unknown status 'finshed'" in result.output
        assert "succeeded" in result.output and "ongoing" in result.output
        assert "Traceback" not in result.output
    assert jobs_db().get(jobs["bad"].id)["status"] == "failed"  # nothing touched


def test_reset_status_both_ways(jobs):
    result = _xpr("reset_status")
    assert result.exit_code != 0 and "at least one filter" in result.output
    result = _xpr("reset_status", "--status", "failed", "-y")
    assert result.exit_code == 0, result.output
    assert jobs_db().get(jobs["bad"].id)["status"] == "created"
    # live jobs are never reset behind the queue's back
    result = _xpr("reset_status", "--name", "sleeper", "-y")
    assert result.exit_code == 1 and "cancel it first" in result.output
    assert jobs_db().get(jobs["running"].id)["status"] in ("submitted", "started")
    # the first xpr's form: a positional new status, no filter needed, nothing asked
    done = jobs["done"][0]
    jobs_db().transition(done.id, "processed")
    result = _xpr("reset_status", "-i", done.id, "created")
    assert result.exit_code == 0, result.output
    assert jobs_db().get(done.id)["status"] == "created"
    # a change the state machine does not allow is refused with the allowed ones
    result = _xpr("reset_status", "-i", jobs["done"][1].id, "started")
    assert result.exit_code == 1 and "not allowed" in result.output
    assert jobs_db().get(jobs["done"][1].id)["status"] == "succeeded"
    bad = _xpr("reset_status", "-s", "failed", "bogus")
    assert bad.exit_code == 2 and "created" in bad.output


def test_fail_job_cancels_and_records_the_failure(jobs):
    running = jobs["running"]
    result = _xpr("fail_job", "-i", running.id, "-y")
    assert result.exit_code == 0, result.output
    assert jobs_db().get(running.id)["status"] == "failed"
    with pytest.raises(RemoteJobError, match="marked as failed by xpr fail_job"):
        running.refresh()._collect()
    failures = _xpr("ls", "--failures").output
    assert "marked as failed by xpr fail_job" in failures and "ValueError('no')" in failures


def test_create_job_brings_back_a_row_for_a_kept_directory(jobs):
    done = jobs["done"][0]
    assert _xpr("rm", "-i", done.id, "-y").exit_code == 0  # row only: the directory stays
    assert jobs_db().get(done.id) is None and done.stage_dir.is_dir()
    result = _xpr("create_job", "-d", str(done.stage_dir), "-S", "local")
    assert result.exit_code == 0, result.output
    row = jobs_db().get(done.id)
    assert row["name"] == "sq0" and row["status"] == "succeeded" and row["system"] == "local"
    again = _xpr("create_job", "--from_dir", str(done.stage_dir), "--system", "local")
    assert again.exit_code == 1 and "already exists" in again.output
    unknown = _xpr("create_job", "-d", str(done.stage_dir), "-S", "nowhere", "-i", "x")
    assert unknown.exit_code == 2 and "nowhere" in unknown.output


def test_dbfile_and_version(jobs, tmp_path, monkeypatch):
    root = Path(jobs_db().path).parent
    monkeypatch.delenv("EXPYRE_ROOT")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    out = _xpr("--dbfile", str(root / "jobs.db"), "ls", "-s", "failed").output
    assert jobs["bad"].id in out
    wrong = _xpr("--dbfile", str(root / "other.db"), "ls")
    assert wrong.exit_code == 2 and "jobs.db" in wrong.output
    import expyre
    import wfl

    version = _xpr("--version").output
    assert expyre.__version__ in version and wfl.__version__ == expyre.__version__
    assert expyre.__version__[0].isdigit()


def test_sync_both_ways(jobs):
    assert "synced 1 live job(s)" in _xpr("sync").output  # default: ongoing jobs
    assert "synced 1 live job(s)" in _xpr("sync", "-s", "ongoing", "-v", "-d").output
    assert "synced 0 live job(s)" in _xpr("sync", "--status", "failed").output
    assert "synced 1 live job(s)" in _xpr("sync", "-s", "*", "-n", "sleeper").output


def test_rm_keeps_row_whose_dirs_cannot_be_deleted(jobs):
    job = jobs["done"][1]
    # a run directory outside the system's rundir is refused, so the row must stay
    jobs_db().update(job.id, remote_dir="/definitely/not/a/rundir/x")
    result = _xpr("rm", "--id", job.id, "-c", "-y")
    assert result.exit_code == 1
    assert "keeping" in result.output and "refusing" in result.output
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
    assert "synced 0 live job(s)" in _xpr("sync").output


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
    assert "not locked" in _xpr("db_unlock", "-y").output


def test_console_script_lists_jobs(jobs):
    xpr = Path(sys.executable).with_name("xpr")
    out = subprocess.run(
        [str(xpr), "ls", "-s", "succeeded"], capture_output=True, text=True, check=True
    )
    assert all(job.id in out.stdout for job in jobs["done"])


def test_the_first_xprs_documented_commands_run_unchanged(jobs):
    """The forms users' notes hold, through the installed console script."""
    xpr = str(Path(sys.executable).with_name("xpr"))

    def run(*args):
        return subprocess.run([xpr, *args], capture_output=True, text=True, timeout=600)

    assert jobs["bad"].id in run("ls", "-s", "failed").stdout
    assert "synced 1 live job(s)" in run("sync", "-s", "ongoing").stdout
    for job in jobs["done"]:
        jobs_db().transition(job.id, "processed")
    removed = run("rm", "-y", "-c", "-s", "processed")
    assert removed.returncode == 0, removed.stdout + removed.stderr
    for job in jobs["done"]:
        assert jobs_db().get(job.id) is None and not job.stage_dir.exists()
    assert "not locked" in run("db_unlock").stdout
    assert jobs_db().get(jobs["running"].id) is not None  # never touched
