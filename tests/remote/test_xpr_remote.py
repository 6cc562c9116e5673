"""``xpr logs``, ``show`` and ``rm --cancel`` against jobs on the real queues.

For a system with a separate run directory (``remote_slurm``: Slurm through ssh), a running
job's logs exist only where it runs, so ``xpr logs`` must fetch them from there.
"""

import contextlib
import time

import pytest
from click.testing import CliRunner
from remote_jobs import chatty

from expyre.cli import cli
from expyre.func import ExPyRe, jobs_db
from expyre.system import get_system

pytestmark = pytest.mark.remote

ONE_CORE = {"num_cores": 1, "max_time": "10m"}


def _xpr(*args):
    return CliRunner(env={"COLUMNS": "200"}).invoke(cli, list(args), catch_exceptions=False)


def _exists(system, path) -> bool:
    return (
        system.run(
            ["sh", "-c", f"test -e {path} && echo yes || echo no"], what="look"
        ).stdout.strip()
        == "yes"
    )


def test_logs_show_and_cancelling_rm_of_a_running_job(remote_project, sys_name):
    job = ExPyRe("chatty", function=chatty, args=[6, 600]).start(ONE_CORE, partial_node=True)
    system = get_system(sys_name)
    try:
        deadline = time.monotonic() + 300
        out = ""
        while time.monotonic() < deadline:
            out = _xpr("logs", job.id, "--tail", "2").output
            if "line 5" in out:
                break
            time.sleep(1)
        assert out.splitlines()[-2:] == ["line 4", "line 5"], out
        assert "a warning on stderr" in _xpr("logs", job.id, "--stderr").output
        row = jobs_db().get(job.id)
        if row["remote_dir"] != row["stage_dir"]:
            # the logs came from where the job runs: the local copy does not exist yet
            assert not (job.stage_dir / "_expyre_job.stdout").exists()
        shown = _xpr("show", job.id).output
        assert f"system     {sys_name}" in shown and str(row["remote_dir"]) in shown
        assert "job script header" in shown
        kept = _xpr("rm", "-i", job.id, "-c", "-y")
        assert kept.exit_code == 1 and "--cancel" in kept.output
        assert jobs_db().get(job.id) is not None
        removed = _xpr("rm", "-i", job.id, "-c", "--cancel", "-y")
        assert removed.exit_code == 0, removed.output
        assert jobs_db().get(job.id) is None and not job.stage_dir.exists()
        state = system.queue_states([row["remote_id"]]).get(row["remote_id"])
        assert state is None or state.is_finished
        if row["remote_dir"] != row["stage_dir"]:
            assert not _exists(system, row["remote_dir"])
    finally:
        remote_id = jobs_db().get(job.id)["remote_id"] if jobs_db().get(job.id) else None
        if remote_id:
            with contextlib.suppress(Exception):  # cleanup only: it may have finished
                system.cancel([remote_id])


def test_check_round_trip(remote_project, sys_name):
    result = _xpr("check", sys_name)
    assert result.exit_code == 0, result.output
    assert result.output.count("[ ok ]") == 6 and f"{sys_name}: ready for jobs" in result.output
    assert jobs_db().select() == []
