"""A job recorded as ended while its queue still runs it is never run a second time beside
itself: neither a resubmission (failure policy, ``force_rerun``) nor ``xpr reset_status``
may start the same job in the same directory while the first run goes on.

The job is declared ``died`` here by writing its row directly -- what a driver does when a
queue briefly stops listing a running job (a scheduler restart, an ssh hiccup that looks
like an empty answer) -- while the local queue really keeps running it.
"""

import time
from pathlib import Path

from click.testing import CliRunner

from expyre.cli import cli
from expyre.func import ExPyRe, jobs_db

ONE_CORE = {"num_cores": 1, "max_time": "10m"}


def counted_nap(log: str, seconds: float) -> str:
    """Append "start" and, after ``seconds``, "end" to ``log`` (one line each)."""
    with open(log, "a") as fh:
        fh.write("start\n")
    time.sleep(seconds)
    with open(log, "a") as fh:
        fh.write("end\n")
    return "rested"


def _running_then_declared_died(tmp_path, seconds):
    log = tmp_path / "runs.log"
    job = ExPyRe("nap", function=counted_nap, args=[str(log), seconds])
    job.start(ONE_CORE, partial_node=True)
    deadline = time.monotonic() + 120
    while not (log.exists() and "start" in log.read_text()):
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    jobs_db().transition(job.id, "died", queue_state="vanished", reason="test: queue hiccup")
    return job.refresh(), log


def test_resubmitting_a_died_job_the_queue_still_runs_stops_the_old_run_first(project, tmp_path):
    job, log = _running_then_declared_died(tmp_path, seconds=6)
    job.resubmit("failure policy: node_failure -> resubmit", ONE_CORE, partial_node=True)
    assert job.get_results(timeout=300)[0] == "rested"
    time.sleep(7)  # past the moment the first run would have finished
    lines = log.read_text().split()
    # one run finished; the first one was stopped before it could finish beside it
    assert lines.count("start") == 2 and lines.count("end") == 1, lines


def test_reset_status_skips_a_died_job_the_queue_still_runs(project, tmp_path):
    job, _ = _running_then_declared_died(tmp_path, seconds=60)
    try:
        out = CliRunner().invoke(cli, ["reset_status", "-i", job.id, "-y"])
        assert out.exit_code == 1, out.output
        assert "still running in the queue" in out.output and "xpr rm --cancel" in out.output
        assert jobs_db().get(job.id)["status"] == "died"
    finally:
        job.cancel()
    assert Path(job.stage_dir).exists()
