"""Watching many jobs at once: one scheduler query per system per poll, adaptive intervals.

:func:`refresh_jobs` brings the database up to date for a set of jobs: it asks each system
about all of its jobs in ONE status call, moves jobs to ``started``, stages finished jobs'
directories back and reads their result files. A job that left the queue without a result
file is declared ``died`` only after a grace period (``EXPYRE_DIED_GRACE`` seconds, default
60: shared filesystems can be slow to show a file) and after the scheduler's accounting was
asked what happened to it -- unless the queue already said it was killed (time limit,
cancelled, out of memory, node failure).

:func:`wait_for_jobs` loops over :func:`refresh_jobs` and yields jobs as they finish.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from expyre import packing
from expyre.errors import JobNotReady
from expyre.jobsdb import FINAL_STATES, LIVE_STATES
from expyre.lifecycle import Need
from expyre.observe import died_grace_s, observe, settle
from expyre.system import System, SystemCommandError, get_system

if TYPE_CHECKING:
    from expyre.func import ExPyRe

__all__ = [
    "PROGRESS_GROUPS",
    "adaptive_interval",
    "died_grace_s",
    "progress_groups",
    "refresh_jobs",
    "status_counts",
    "wait_for_jobs",
]

PROGRESS_KEYS = ("created", "submitted", "queued", "running", "succeeded", "failed", "died")
#: the categories of :func:`status_counts` in the four words a user waits on
PROGRESS_GROUPS = {
    "queued": ("created", "submitted", "queued"),
    "running": ("running",),
    "done": ("succeeded",),
    "failed": ("failed", "died"),
}


# seconds between looks at the change markers while waiting for the next poll
_WAKE_CHECK_S = 0.02

# consecutive polls that may fail (scheduler/ssh down) before waiting gives up
_MAX_FAILED_POLLS = 5


def _transient_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [SystemCommandError]
    ssh = sys.modules.get("expyre.ssh")  # only loaded when a system uses ssh
    if ssh is not None and hasattr(ssh, "SshError"):
        errors.append(ssh.SshError)
    return tuple(errors)


def adaptive_interval(elapsed_s: float) -> float:
    """Poll interval, s: about 1 s for young waits, growing to 30 s after ~5 minutes."""
    return min(30.0, max(1.0, elapsed_s / 10.0))


def status_counts(jobs: Iterable[ExPyRe]) -> dict[str, int]:
    """Counts by progress category (created/submitted/queued/running/succeeded/failed/died).

    ``queued`` is a submitted job the queue reported as waiting, ``running`` a started one;
    ``processed`` jobs count as ``succeeded`` (their outcome was consumed already).
    """
    counts = Counter({k: 0 for k in PROGRESS_KEYS})
    for job in jobs:
        status = job.status
        if status == "submitted" and job.row["queue_state"] in ("queued", "held"):
            status = "queued"
        elif status == "started":
            status = "running"
        elif status == "processed":
            status = "succeeded"
        counts[status] += 1
    return dict(counts)


def progress_groups(counts: dict[str, int]) -> dict[str, int]:
    """:func:`status_counts` collapsed into :data:`PROGRESS_GROUPS` (queued/running/done/failed)."""
    return {g: sum(counts.get(k, 0) for k in keys) for g, keys in PROGRESS_GROUPS.items()}


def change_markers(jobs: Iterable[ExPyRe]) -> dict[str, int | None]:
    """Local paths whose mtime changes when one of ``jobs`` ends, with their mtime now (ns).

    One path per system at most (see :meth:`expyre.system.System.change_marker`), so the
    cost does not grow with the number of jobs.
    """
    markers: dict[str, int | None] = {}
    seen = set()
    for job in jobs:
        key = (str(job.config.root), job.system_name)
        if key in seen or not job.system_name:
            continue
        seen.add(key)
        path = _system_of(job).change_marker()
        if path is not None:
            markers[path] = _mtime_ns(path)
    return markers


def _mtime_ns(path: str) -> int | None:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return None


def sleep_until_changed(markers: dict[str, int | None], seconds: float) -> None:
    """Sleep ``seconds``, or less: return as soon as one marker's mtime differs.

    A stat every ``_WAKE_CHECK_S`` is cheap next to a scheduler query, and lets the driver
    learn of a finished local job at once instead of at the next poll.
    """
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(_WAKE_CHECK_S, left) if markers else left)
        if any(_mtime_ns(path) != mtime for path, mtime in markers.items()):
            return


def _system_of(job: ExPyRe) -> System:
    return get_system(job.system_name, job.config)


def _refresh_rows(jobs: list[ExPyRe]) -> None:
    """Re-read the jobs' rows, in bulk (one query per jobs database)."""
    from expyre.func import ExPyRe

    ExPyRe.refresh_all(jobs)


def refresh_jobs(jobs: Iterable[ExPyRe]) -> None:
    """Update the state of ``jobs`` from their queues, one status call per system.

    Parameters
    ----------
    jobs : iterable of ExPyRe
        Jobs to refresh; those not queued or running are only re-read from the database.
    """
    jobs = list(jobs)
    _refresh_rows(jobs)
    groups: dict[tuple[str, str], list[ExPyRe]] = {}
    for job in jobs:
        if job.status in LIVE_STATES and job.remote_id and job.system_name:
            groups.setdefault((str(job.config.root), job.system_name), []).append(job)
    for group in groups.values():
        system = _system_of(group[0])
        packed = [job for job in group if packing.is_packed(job.remote_id)]
        group = [job for job in group if not packing.is_packed(job.remote_id)]
        ids = [job.remote_id for job in group]
        ids += sorted({i for job in packed for i in packing.allocation_ids(job.remote_id)})
        states = system.queue_states(ids)  # one query for plain jobs and allocations alike
        if packed:
            packing.refresh_packed(packed, system, states)
        undecided = []
        for job in group:
            seen = observe(job, system, states.get(job.remote_id))
            if settle(job, system, seen).need is Need.ACCOUNTING:
                undecided.append((job, seen))
        if undecided:
            # left the queue without a result: one accounting query for all of them
            accounting = system.accounting([job.remote_id for job, _ in undecided])
            for job, seen in undecided:
                answer = accounting.get(job.remote_id)
                settle(job, system, replace(seen, accounting=answer, accounting_asked=True))


def wait_for_jobs(
    jobs: Iterable[ExPyRe],
    timeout: float | None = 3600,
    check_interval: float | None = None,
    on_progress: Callable[[dict[str, int], float], None] | None = None,
) -> Iterator[ExPyRe]:
    """Yield each job as it reaches a final state, in completion order.

    Parameters
    ----------
    jobs : iterable of ExPyRe
        Started jobs (already finished ones are yielded after the first poll).
    timeout : float or None
        Longest total wait, seconds (0: poll once). None: no limit -- wait as long as the
        jobs are alive; a job that leaves the queue without a result still ends the wait
        (it is declared died), so this never hangs on a lost job.
    check_interval : float, optional
        Seconds between polls; None adapts (:func:`adaptive_interval`).
    on_progress : callable, optional
        Called as ``on_progress(counts, elapsed_s)`` after every poll, with
        :func:`status_counts` of all jobs.

    Yields
    ------
    ExPyRe
        A job in state succeeded, failed, died or processed; its ``get_results(timeout=0)``
        returns (or raises :class:`expyre.func.RemoteJobError`) without waiting. Or a packed
        chunk back in ``created`` (its allocations ended before claiming it; it never ran):
        start it again with :func:`expyre.packing.start_packed`.

    Raises
    ------
    JobNotReady
        When ``timeout`` passes with jobs unfinished (lists them).
    ValueError
        If a job was never started, or is stale/cleaned.
    """
    all_jobs = list({job.id: job for job in jobs}.values())
    _refresh_rows(all_jobs)
    for job in all_jobs:
        if job.status in ("created", "stale", "cleaned"):
            raise ValueError(
                f"job {job.id} is {job.status}; only started jobs can be waited for "
                "(call start() first, or create a new job)"
            )
    pending = list(all_jobs)
    t0 = time.monotonic()
    failed_polls = 0
    while True:
        try:
            refresh_jobs(pending)
            failed_polls = 0
        except _transient_errors() as exc:
            # a scheduler or ssh hiccup must not abandon jobs that are fine in the queue
            failed_polls += 1
            if failed_polls >= _MAX_FAILED_POLLS:
                raise
            warnings.warn(f"could not poll jobs ({exc}); trying again", stacklevel=2)
        # "created" here is a packed chunk no allocation claimed before they all ended: it
        # never ran, and is yielded so the caller starts it again (packing.start_packed)
        done = [job for job in pending if job.status in FINAL_STATES or job.status == "created"]
        done_ids = {id(job) for job in done}
        pending = [job for job in pending if id(job) not in done_ids]
        elapsed = time.monotonic() - t0
        if on_progress is not None:
            on_progress(status_counts(all_jobs), elapsed)
        yield from done
        if not pending:
            return
        elapsed = time.monotonic() - t0
        if timeout is not None and elapsed >= timeout:
            listing = ", ".join(f"{j.name} ({j.id}, {j.status})" for j in pending[:20])
            more = f" and {len(pending) - 20} more" if len(pending) > 20 else ""
            raise JobNotReady(
                f"{len(pending)} job(s) not finished after {timeout:g} s: {listing}{more}; "
                "wait longer (timeout=...) or rerun later -- running jobs are not lost"
            )
        interval = check_interval if check_interval is not None else adaptive_interval(elapsed)
        if timeout is not None:
            interval = min(interval, timeout - elapsed)
        sleep_until_changed(change_markers(pending), max(0.0, interval))
