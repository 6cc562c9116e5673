"""``xpr rm`` never leaves a job that may still be in a queue without its row and directory.

Real local-queue jobs: a job made stale by an edit of its function keeps running in the
queue; removing it must cancel it first (``--cancel``) or keep it with a message saying how.
"""

import importlib
import sys
import textwrap
import time

import pytest
from click.testing import CliRunner
from expyre_testutil import square

import expyre.stale
from expyre.cli import cli
from expyre.func import ExPyRe, jobs_db
from expyre.system import get_system

ONE_CORE = {"num_cores": 1, "max_time": "10m"}


def _xpr(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def _write_work_module(directory, sleep_s):
    (directory / "edited_work.py").write_text(
        textwrap.dedent(
            f"""
            import pathlib
            import time

            def work(x, marker):
                pathlib.Path(marker).write_text("running")
                time.sleep({sleep_s})
                return x
            """
        )
    )


@pytest.fixture
def stale_running(project, tmp_path, monkeypatch):
    """A job that became stale (its function was edited) while it runs in the local queue."""
    code_dir = tmp_path / "code"
    code_dir.mkdir()
    _write_work_module(code_dir, 300)
    monkeypatch.syspath_prepend(str(code_dir))
    import edited_work

    marker = tmp_path / "running"
    args = [1, str(marker)]
    old = ExPyRe("work", function=edited_work.work, args=args).start(ONE_CORE, partial_node=True)
    system = get_system("local")
    for _ in range(600):  # wait (generously) until the old code really runs
        if marker.exists():
            break
        time.sleep(0.5)
    _write_work_module(code_dir, 0)
    importlib.reload(edited_work)

    def killed_before_cancelling(entries):
        raise SystemExit("driver killed")

    # the rerun with edited code cancels the old job -- unless it is killed first, which
    # leaves exactly the job these tests need: stale, and still running
    monkeypatch.setattr(expyre.stale, "_cancel", killed_before_cancelling)
    with pytest.raises(SystemExit):
        ExPyRe("work", function=edited_work.work, args=args)
    yield old
    sys.modules.pop("edited_work", None)
    system.cancel([old.remote_id])


def _in_queue(job) -> bool:
    state = get_system("local").status([job.remote_id]).get(job.remote_id)
    return state is not None and not state.is_finished


def test_rm_keeps_a_stale_job_that_still_runs(stale_running):
    job = stale_running
    assert jobs_db().get(job.id)["status"] == "stale"
    assert _in_queue(job)

    result = _xpr("rm", "--status", "stale", "-y")
    assert result.exit_code == 1, result.output
    assert jobs_db().get(job.id) is not None and job.stage_dir.is_dir()
    assert "--cancel" in result.output and job.id in result.output
    assert _in_queue(job)  # untouched

    result = _xpr("rm", "-s", "stale", "-c", "-y")  # the first xpr's -c cleans, never cancels
    assert result.exit_code == 1 and jobs_db().get(job.id) is not None

    result = _xpr("rm", "-s", "stale", "--cancel", "-c", "-y")
    assert result.exit_code == 0, result.output
    assert not _in_queue(job)
    assert jobs_db().get(job.id) is None and not job.stage_dir.exists()


def test_rm_shows_plan_dry_run_and_declines(project, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    done = ExPyRe("sq", function=square, args=[2]).start(ONE_CORE, partial_node=True)
    assert done.get_results(timeout=300)[0] == 4
    running = ExPyRe("sleeper", function=__import__("time").sleep, args=[300]).start(
        ONE_CORE, partial_node=True
    )
    try:
        dry = _xpr("rm", "-s", "*", "--dry-run")
        assert dry.exit_code == 1  # the running job would be kept
        assert "would remove 1 job(s)" in dry.output and done.id in dry.output
        assert f"keeping {running.id}" in dry.output
        assert jobs_db().get(done.id) is not None and done.stage_dir.exists()

        declined = _xpr("rm", "-i", done.id, input="n\n")
        assert declined.exit_code == 1 and "will remove 1 job(s)" in declined.output
        assert jobs_db().get(done.id) is not None

        # without -c (the first xpr's meaning) the row goes and the directory stays
        kept_dirs = _xpr("rm", "-i", done.id, "-y")
        assert kept_dirs.exit_code == 0, kept_dirs.output
        assert jobs_db().get(done.id) is None and done.stage_dir.is_dir()
        assert "directories were kept" in kept_dirs.output

        # a live job with --cancel: cancelled, then its row and directory removed
        result = _xpr("rm", "-n", "sleeper", "--cancel", "--clean", "-y")
        assert result.exit_code == 0, result.output
        assert jobs_db().get(running.id) is None and not running.stage_dir.exists()
    finally:
        get_system("local").cancel([running.remote_id])


def test_rm_needs_a_criterion(project):
    ExPyRe("sq", function=square, args=[3])
    result = _xpr("rm", "-y")
    assert result.exit_code == 2 and "at least one criterion" in result.output


def test_api_clean_refuses_a_stale_job_still_in_queue_and_cancel_stops_it(stale_running):
    """The same hole in the Python API: ExPyRe.clean() of a stale job that still runs."""
    job = stale_running.refresh()
    assert job.status == "stale" and _in_queue(job)
    with pytest.raises(RuntimeError, match="still .* in the queue.*cancel"):
        job.clean(wipe=True)
    assert job.stage_dir.is_dir() and jobs_db().get(job.id)["status"] == "stale"
    job.cancel()
    deadline = time.monotonic() + 120
    while _in_queue(job) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _in_queue(job)
    job.clean(wipe=True)
    assert not job.stage_dir.exists() and jobs_db().get(job.id)["status"] == "cleaned"
