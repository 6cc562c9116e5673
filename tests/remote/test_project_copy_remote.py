"""A copied project on a cluster reached over ssh never touches the original's jobs.

``cp -a proj proj2`` copies the jobs database with its job ids. Remote run directories are
kept per project (``<rundir>/<project id>/<job id>``) and the copy gets its own project id
when it is first opened, letting go of the original's queue entries and remote directories:
``xpr rm --cancel -c`` in the copy must neither cancel the original's running job nor delete
its remote results, and a rerun in the copy runs in directories of its own.
"""

import subprocess
import time

import pytest
from click.testing import CliRunner
from remote_jobs import sleep_for, square

from expyre.cli import cli
from expyre.func import ExPyRe
from expyre.jobsdb import JobsDB
from expyre.system import get_system

pytestmark = pytest.mark.remote

ONE_CORE = {"num_cores": 1, "max_time": "10m"}


def _exists(system, path) -> bool:
    probe = ["sh", "-c", f"test -e {path} && echo yes || echo no"]
    return system.run(probe, what="look").stdout.strip() == "yes"


def _wait_running(system, remote_id, timeout=300):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = system.status([remote_id]).get(remote_id)
        if state is not None and state.value == "running":
            return
        time.sleep(1)
    raise AssertionError(f"{remote_id} never ran")


def _system_over_ssh(sys_name, sys_config):
    if not sys_config.get("host"):
        pytest.skip("not applicable: system is not reached over ssh")
    return get_system(sys_name)


def _work_in_a_copy(tmp_path, suffix, monkeypatch):
    """``cp -a`` the whole project (as a user copies one) and make the copy the current
    project; returns the copy's directory."""
    copy = tmp_path.parent / (tmp_path.name + suffix)
    subprocess.run(["cp", "-a", str(tmp_path), str(copy)], check=True)
    monkeypatch.setenv("EXPYRE_ROOT", str(copy / "_expyre"))
    monkeypatch.chdir(copy / "work")
    return copy


def test_commands_in_a_copied_project_leave_the_originals_cluster_jobs_alone(
    remote_project, sys_name, sys_config, tmp_path, monkeypatch
):
    system = _system_over_ssh(sys_name, sys_config)
    done = ExPyRe("done", function=square, args=[7]).start(ONE_CORE, partial_node=True)
    assert done.get_results(timeout=600)[0] == 49
    live = ExPyRe("live", function=sleep_for, args=[600]).start(ONE_CORE, partial_node=True)
    original_db = JobsDB(remote_project / "jobs.db")
    original_id = original_db.project_id
    done_dir, live_dir = done.row["remote_dir"], live.row["remote_dir"]
    assert f"/{original_id}/" in done_dir and f"/{original_id}/" in live_dir
    assert _exists(system, done_dir)
    try:
        _wait_running(system, live.remote_id)
        copy = _work_in_a_copy(tmp_path, "_copy", monkeypatch)

        copy_db = JobsDB(copy / "_expyre" / "jobs.db")
        assert copy_db.project_id != original_id
        rows = {r["name"]: r for r in copy_db.select()}
        # the copy holds no scheduler id nor remote directory of the original
        assert all(r["remote_id"] is None for r in rows.values())
        assert all(r["remote_dir"] is None for r in rows.values())
        assert rows["live"]["status"] == "created" and rows["done"]["status"] == "succeeded"

        out = CliRunner().invoke(cli, ["rm", "-s", "*", "--cancel", "-c", "-y"])
        assert out.exit_code == 0, out.output
        assert "removed 2 job(s)" in out.output
        assert copy_db.select() == []
        # the original's finished results and its running job are untouched
        assert _exists(system, done_dir) and _exists(system, live_dir)
        state = system.status([live.remote_id]).get(live.remote_id)
        assert state is not None and state.value == "running"
    finally:
        monkeypatch.setenv("EXPYRE_ROOT", str(remote_project))
        monkeypatch.chdir(tmp_path / "work")
        live.cancel()
    assert original_db.get(live.id)["status"] == "died"  # cancelled by its own project


def test_a_rerun_in_a_copy_runs_in_its_own_remote_directories(
    remote_project, sys_name, sys_config, tmp_path, monkeypatch
):
    system = _system_over_ssh(sys_name, sys_config)
    job = ExPyRe("sq", function=square, args=[3]).start(ONE_CORE, partial_node=True)
    assert job.get_results(timeout=600)[0] == 9
    original_dir = job.row["remote_dir"]
    job.reset_for_rerun("run it again")  # a failed job would be resubmitted like this
    copy = _work_in_a_copy(tmp_path, "_copy2", monkeypatch)
    again = ExPyRe("sq", function=square, args=[3])  # the same job, in the copy ...
    assert again.row["key"] == job.row["key"] and again.row["n_submissions"] == 1
    assert again.id != job.id  # ... under an id of its own: its name in the queue
    again.start(ONE_CORE, partial_node=True)
    assert again.get_results(timeout=600)[0] == 9
    copy_dir = again.row["remote_dir"]
    assert (
        copy_dir != original_dir
        and f"/{JobsDB(copy / '_expyre' / 'jobs.db').project_id}/" in copy_dir
    )
    again.clean()
    assert not _exists(system, copy_dir)
    assert _exists(system, original_dir)  # the resubmission in the copy never removed it
    monkeypatch.setenv("EXPYRE_ROOT", str(remote_project))
    with pytest.raises(ValueError, match="belongs to another project"):
        system.remove_dir(original_dir, JobsDB(copy / "_expyre" / "jobs.db").project_id)
