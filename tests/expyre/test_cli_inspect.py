"""``xpr ls`` columns and views, ``xpr show`` and ``xpr logs`` on real local-queue jobs."""

import re

import pytest
from click.testing import CliRunner
from expyre_testutil import chatty

from expyre.cli import cli
from expyre.func import ExPyRe, RemoteJobError, jobs_db
from expyre.system import get_system

ONE_CORE = {"num_cores": 1, "max_time": "10m"}


def _xpr(*args, columns=160, monkeypatch=None):
    result = CliRunner(env={"COLUMNS": str(columns)}).invoke(
        cli, list(args), catch_exceptions=False
    )
    return result


@pytest.fixture
def finished(project):
    """One succeeded and one failed job, both chatty."""
    good = ExPyRe("good", function=chatty, args=[30]).start(ONE_CORE, partial_node=True)
    bad = ExPyRe("bad", function=chatty, args=[5], kwargs={"fail": True}).start(
        ONE_CORE, partial_node=True
    )
    assert good.get_results(timeout=300)[0] == 30
    with pytest.raises(RemoteJobError):
        bad.get_results(timeout=300)
    return good, bad


def test_ls_has_wait_and_run_columns_and_says_how_old(finished):
    good, bad = finished
    out = _xpr("ls").output
    header = out.splitlines()[0].split()
    assert header == ["ID", "NAME", "STATUS", "REMOTE_ID@SYS", "SINCE", "QUEUED", "RAN"]
    row = next(line for line in out.splitlines() if line.startswith(good.id)).split()
    duration = r"\d+\.\ds|\d+s|\d+m\d\ds"
    assert re.fullmatch(duration, row[5]) and re.fullmatch(duration, row[6])
    assert jobs_db().get(good.id)["started_at"] is not None
    assert "no job shown is queued or running" in out


def test_tables_fit_the_terminal(finished):
    good, _ = finished
    for columns in (60, 160):
        out = _xpr("ls", "-l", columns=columns).output
        assert max(len(line) for line in out.splitlines()) <= columns, out
        assert good.id in out  # ids are never cut: they are what the user copies
    narrow = _xpr("ls", "-l", columns=60).output
    assert "left out to fit 60 columns" in narrow
    wide = _xpr("ls", "-l", columns=250).output
    assert "left out" not in wide and str(good.stage_dir) in wide


def test_failures_view_gives_one_reason_per_job(finished):
    good, bad = finished
    out = _xpr("ls", "--failures").output
    assert bad.id in out and good.id not in out
    assert "RuntimeError('chatty failed after 5 lines')" in out
    assert "1 failure(s)" in out


def test_show_tells_history_script_dirs_and_remote_error(finished):
    good, bad = finished
    out = _xpr("show", bad.id).output
    assert f"job        {bad.id}" in out and "status     failed" in out
    states = re.findall(r"^\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\s+(\w+)", out, re.M)
    assert states[:4] == ["created", "submitted", "started", "failed"], out
    assert "job script header" in out and "#" in out.split("job script header")[1]
    assert str(bad.stage_dir) in out
    assert "RuntimeError('chatty failed after 5 lines')" in out
    assert "remote traceback:" in out and 'raise RuntimeError(f"chatty failed' in out
    # a unique start of an id is enough; an unknown one is a clear error
    assert f"job        {good.id}" in _xpr("show", good.id[:-3]).output
    missing = CliRunner().invoke(cli, ["show", "nope"])
    assert missing.exit_code == 1 and "no job 'nope'" in missing.output


def test_logs_tail_and_stderr(finished):
    good, _ = finished
    out = _xpr("logs", good.id).output
    assert out.splitlines()[-1] == "line 29" and "line 0" in out
    tail = _xpr("logs", good.id, "--tail", "3").output.splitlines()
    assert tail[-3:] == ["line 27", "line 28", "line 29"] and "line 26" not in tail
    assert "a warning on stderr" in _xpr("logs", good.id, "--stderr").output


def test_logs_of_a_running_job(project):
    job = ExPyRe("slow", function=chatty, args=[4, 300]).start(ONE_CORE, partial_node=True)
    try:
        import time

        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and "line 3" not in _xpr("logs", job.id).output:
            time.sleep(0.5)
        assert _xpr("logs", job.id, "--tail", "1").output.splitlines()[-1] == "line 3"
        out = _xpr("ls", "-s", "live").output
        assert job.id in out and "states as last recorded: 1 live job(s)" in out
    finally:
        get_system("local").cancel([job.refresh().remote_id])


def test_summary_for_big_projects(project, monkeypatch):
    import expyre.cli.listing as listing

    monkeypatch.setattr(listing, "SUMMARY_ABOVE", 3)
    for i in range(5):
        ExPyRe(f"n{i % 2}", function=chatty, args=[i])
    out = _xpr("ls").output
    assert "5 jobs in" in out and "STATUS" in out and "created" in out
    assert "list rows with filters" in out
    assert out.count("n0") == 1  # a count per name, not a row per job
    listed = _xpr("ls", "--all").output
    assert "5 job(s): 5 created" in listed
