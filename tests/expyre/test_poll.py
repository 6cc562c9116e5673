"""Died detection: grace period, accounting, killed states; adaptive polling."""

import time

import pytest
from expyre_testutil import sleep_then, square

from expyre.func import ExPyRe, RemoteJobError, jobs_db
from expyre.poll import adaptive_interval, refresh_jobs, status_counts, wait_for_jobs
from expyre.schedulers.local import LocalScheduler
from expyre.system import get_system

ONE_CORE = {"num_cores": 1, "max_time": "10m"}


def _vanish(job):
    """Make the queue forget a job that never wrote a result (as after a purge)."""
    system = get_system(job.system_name)
    system.cancel([job.remote_id])
    record = system.root / "localqueue" / system.name / "jobs" / job.remote_id
    for f in record.iterdir():
        f.unlink()
    record.rmdir()


def test_job_out_of_queue_without_result_dies_only_after_grace(project, monkeypatch):
    monkeypatch.setenv("EXPYRE_DIED_GRACE", "3600")
    job = ExPyRe("ghost", function=sleep_then, args=[300, 1]).start(ONE_CORE, partial_node=True)
    _vanish(job)
    refresh_jobs([job])
    assert job.status in ("submitted", "started")  # within the grace period: not yet died
    assert job.row["left_queue_at"] is not None
    # the grace period has passed (recorded in the DB, so a rerun continues it)
    jobs_db().update(job.id, left_queue_at=time.time() - 3601)
    refresh_jobs([job])
    assert job.status == "died" and job.row["queue_state"] == "vanished"
    with pytest.raises(RemoteJobError, match="vanished"):
        job.get_results(timeout=0)


class _AccountingLocal(LocalScheduler):
    """The local queue plus an accounting command (a real one: echo) that reports a kill."""

    def accounting_command(self, remote_ids):
        return ["echo", *[f"{i}=out_of_memory" for i in remote_ids]]

    def parse_accounting_output(self, stdout, remote_ids):
        from expyre.schedulers.base import QueueState

        pairs = (w.split("=") for w in stdout.split())
        return {i: QueueState(s) for i, s in pairs if i in remote_ids}


def test_accounting_is_asked_and_a_kill_it_reports_is_died_at_once(project, monkeypatch):
    monkeypatch.setenv("EXPYRE_DIED_GRACE", "3600")
    job = ExPyRe("oom", function=sleep_then, args=[300, 2]).start(ONE_CORE, partial_node=True)
    system = get_system(job.system_name)
    s = system.scheduler
    system._scheduler = _AccountingLocal(s.queue_dir, " ".join(s.python_argv), s.partition_cores)
    try:
        _vanish(job)
        refresh_jobs([job])
    finally:
        system._scheduler = None
    assert job.status == "died" and job.row["queue_state"] == "out_of_memory"


def test_wait_for_jobs_yields_in_completion_order_and_reports_progress(project):
    slow = ExPyRe("slow", function=sleep_then, args=[4, "slow"]).start(ONE_CORE, partial_node=True)
    fast = ExPyRe("fast", function=square, args=[2]).start(ONE_CORE, partial_node=True)
    progress = []
    order = [
        j.name
        for j in wait_for_jobs(
            [slow, fast], timeout=300, on_progress=lambda c, e: progress.append((c, e))
        )
    ]
    assert order == ["fast", "slow"]
    assert progress[-1][0]["succeeded"] == 2
    assert all(sum(c.values()) == 2 for c, _ in progress)
    assert [e for _, e in progress] == sorted(e for _, e in progress)


def test_wait_for_jobs_timeout_and_unstarted_jobs(project):
    job = ExPyRe("long", function=sleep_then, args=[300, 1]).start(ONE_CORE, partial_node=True)
    with pytest.raises(TimeoutError, match="not finished after 0 s"):
        list(wait_for_jobs([job], timeout=0))
    job.cancel()
    never = ExPyRe("never", function=square, args=[99])
    with pytest.raises(ValueError, match="call start"):
        list(wait_for_jobs([never]))


def test_without_timeout_the_wait_lasts_as_long_as_the_job_lives(project):
    done = ExPyRe("done", function=sleep_then, args=[2, "ok"]).start(ONE_CORE, partial_node=True)
    gone = ExPyRe("gone", function=sleep_then, args=[300, 1]).start(ONE_CORE, partial_node=True)
    get_system(gone.system_name).cancel([gone.remote_id])  # ends behind expyre's back
    finished = {j.name: j.status for j in wait_for_jobs([done, gone], timeout=None)}
    assert finished == {"done": "succeeded", "gone": "died"}
    assert done.get_results(timeout=None)[0] == "ok"


def test_adaptive_interval_and_counts(project):
    assert (
        adaptive_interval(0) == 1.0
        and adaptive_interval(100) == 10.0
        and adaptive_interval(1e5) == 30.0
    )
    job = ExPyRe("c", function=square, args=[1])
    assert status_counts([job])["created"] == 1


def test_a_failed_status_poll_is_retried_not_fatal(project, monkeypatch):
    from expyre.system import System, SystemCommandError

    real_run = System.run
    failures = []

    def flaky_run(self, argv, **kw):
        if "status" in argv and len(failures) < 2:
            failures.append(argv)
            raise SystemCommandError("queue temporarily unreachable")
        return real_run(self, argv, **kw)

    monkeypatch.setattr(System, "run", flaky_run)
    job = ExPyRe("flaky", function=square, args=[5]).start(ONE_CORE, partial_node=True)
    with pytest.warns(UserWarning, match="could not poll"):
        done = list(wait_for_jobs([job], timeout=300, check_interval=0.2))
    assert len(failures) == 2 and done[0].get_results(timeout=0)[0] == 25


def test_a_finished_local_job_wakes_the_waiting_driver_before_its_next_poll(project):
    """With an hour between polls, the job is still yielded: its end wakes the wait."""
    import threading

    job = ExPyRe("wake", function=square, args=[7]).start(ONE_CORE, partial_node=True)
    # the first poll happens at once, while the job has not finished yet (it sleeps first)
    slow = ExPyRe("wake_slow", function=sleep_then, args=[2, 5]).start(ONE_CORE, partial_node=True)
    finished = []
    waiter = threading.Thread(
        target=lambda: finished.extend(
            wait_for_jobs([job, slow], timeout=7200, check_interval=3600)
        ),
        daemon=True,
    )
    waiter.start()
    waiter.join(timeout=300)  # generous; without the wake-up this would take an hour
    assert not waiter.is_alive(), "the driver was not woken by the end of its local jobs"
    assert sorted(j.name for j in finished) == ["wake", "wake_slow"]
    assert [j.get_results(timeout=0)[0] for j in finished if j.name == "wake"] == [49]


def test_sleep_until_changed_returns_when_a_marker_changes(tmp_path):
    import os
    import threading

    from expyre.poll import change_markers, sleep_until_changed

    assert change_markers([]) == {}
    marker = tmp_path / "queue"
    marker.mkdir()
    os.utime(marker, (1, 1))  # an old mtime, so the touch below surely differs
    markers = {str(marker): marker.stat().st_mtime_ns}
    threading.Timer(0.3, lambda: os.utime(marker)).start()
    sleeper = threading.Thread(target=sleep_until_changed, args=(markers, 3600), daemon=True)
    sleeper.start()
    sleeper.join(timeout=120)
    assert not sleeper.is_alive()


def test_progress_groups_cover_every_progress_category_once():
    from expyre.poll import PROGRESS_GROUPS, PROGRESS_KEYS, progress_groups

    grouped = [key for keys in PROGRESS_GROUPS.values() for key in keys]
    assert sorted(grouped) == sorted(PROGRESS_KEYS)
    counts = {"created": 1, "submitted": 2, "queued": 3, "running": 4, "succeeded": 5, "died": 6}
    assert progress_groups(counts) == {"queued": 6, "running": 4, "done": 5, "failed": 6}
