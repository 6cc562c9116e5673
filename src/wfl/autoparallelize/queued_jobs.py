"""Submitting queued jobs, waiting for them and acting on their failures, in one place.

:func:`start_new_and_failed_jobs` submits what is not submitted yet (each job a queue job
of its own, or packed: :mod:`expyre.packing`). :func:`gather` waits for a set of started jobs (one scheduler status query per system per
poll, done by expyre), hands each finished job to the caller as it finishes
(``on_finished``: the item store saves its results there), applies the failure policy of
each failed job (:mod:`wfl.autoparallelize.failure_policy`: resubmit, more time or memory,
split, or report), and returns every job's value in job order. Failures that remain are
raised together (:class:`QueuedJobsFailed`), every failed job listed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from expyre.errors import ExPyReJobDiedError, combined_error_class, copy_exception_state
from wfl.autoparallelize.failure_policy import decide, effective_policies, remedy
from wfl.autoparallelize.progress import JobProgress
from wfl.autoparallelize.remoteinfo import RemoteInfo

__all__ = [
    "FAILED",
    "FAILED_JOB_TAG",
    "JobFailure",
    "QueuedJobsFailed",
    "failure_classes",
    "gather",
    "packed",
    "start_job",
    "start_jobs",
    "start_new_and_failed_jobs",
]

#: ``info`` key set on the inputs returned in place of results of failed jobs
#: (``ignore_failed_jobs``)
FAILED_JOB_TAG = "EXPYRE_REMOTE_JOB_FAILED"


class _Failed:
    """The type of :data:`FAILED`."""

    def __repr__(self) -> str:
        return "FAILED"


#: value :func:`gather` returns in place of a failed job's result (with ignore_failed_jobs)
FAILED = _Failed()


@dataclass
class JobFailure:
    """One failed job, as reported to the user."""

    job_name: str
    job_id: str
    stage_dir: str
    error: BaseException
    category: str | None = None
    why_not_retried: str = ""
    inputs: Sequence[str] = ()
    attempts: Sequence[str] = ()
    #: what fits why the policy stopped, when the category's own remedy does not
    remedy: str = ""

    def describe(self) -> str:
        lines = [f"--- job {self.job_name} (id {self.job_id}, dir {self.stage_dir})"]
        lines += [f"earlier attempt: {reason}" for reason in self.attempts]
        if self.category:
            lines.append(f"category: {self.category}; not retried: {self.why_not_retried}")
            fits = self.remedy.replace(" ID", f" {self.job_id}") or remedy(
                self.category, self.job_id
            )
            lines.append(f"remedy: {fits}")
        if self.inputs:
            shown = ", ".join(self.inputs[:10]) + (" ..." if len(self.inputs) > 10 else "")
            lines.append(f"input items: {shown}")
        lines.append(str(self.error))
        return "\n".join(lines)


class QueuedJobsFailed(RuntimeError):
    """Raised after gathering when any job failed; lists *every* failed job.

    It is also an instance of the class of every exception the failed jobs raised (and
    an ``ExPyReJobDiedError`` if a job died), so a script's ``except ValueError:`` around
    the operation catches a remote ``ValueError`` as it did in wfl 0.3.5 (see
    :func:`failure_classes`).
    """

    def __new__(cls, failures: Sequence[JobFailure], total: int):
        if cls is not QueuedJobsFailed:
            return super().__new__(cls)
        classes = failure_classes(failures)
        combined = combined_error_class(cls, classes)
        # an extended layout (OSError's) must be built by its own class's __new__
        for maker in [RuntimeError, *classes] if combined is not None else []:
            try:
                return maker.__new__(combined)
            except TypeError:
                continue
        return super().__new__(cls)

    def __init__(self, failures: Sequence[JobFailure], total: int) -> None:
        failures = list(failures)
        first = next((f.error.remote_exception for f in failures if _raised(f)), None)
        if first is not None and isinstance(self, type(first)):
            copy_exception_state(first, self)  # its attributes, as if it were raised here
        self.failures = failures
        self.total = total
        categories = sorted({f.category or "unknown" for f in self.failures})
        lines = [
            f"{len(self.failures)} of {total} queued job(s) failed ({', '.join(categories)}); "
            "each is listed with the remedy that fits it (to carry on without them instead, "
            "pass ignore_failed_jobs=True in RemoteInfo: their inputs come back tagged "
            f"{FAILED_JOB_TAG!r}):"
        ]
        lines += [f.describe() for f in self.failures]
        self.report = "\n".join(lines)
        super().__init__(self.report)

    def __str__(self) -> str:
        # the report, whatever __str__ the remote exceptions' classes bring (OSError's...)
        return self.report

    def __reduce__(self):
        # the combined class is made at run time and cannot be found by name when unpickled
        # (in a pool's parent, or a driver reading a nested job's error): rebuild it instead
        return (QueuedJobsFailed, (self.failures, self.total))


def _raised(failure: JobFailure) -> bool:
    return getattr(failure.error, "remote_exception", None) is not None


def failure_classes(failures: Sequence[JobFailure]) -> list[type]:
    """Classes a handler may name to catch these failures: each remote exception's class,
    and ``ExPyReJobDiedError`` for jobs that died without raising."""
    classes: list[type] = []
    for failure in failures:
        if _raised(failure):
            classes.append(type(failure.error.remote_exception))
        elif isinstance(failure.error, ExPyReJobDiedError):
            classes.append(ExPyReJobDiedError)
    return classes


def start_jobs(jobs: list[Any], remote_info: RemoteInfo, force_rerun: bool = False) -> None:
    """Submit jobs: each a queue job of its own, or packed (``max_allocations``, ``job_array``)."""
    if not packed(remote_info):
        for job in jobs:
            start_job(job, remote_info, force_rerun=force_rerun)
        return
    from expyre.packing import start_packed

    # an allocation asks for what one chunk needs: chunks whose request a failure policy
    # raised (more time or memory) are packed apart, into allocations asking for that
    groups: dict[str, tuple[Any, list[Any]]] = {}
    for job in jobs:
        request = _job_request(job, remote_info)
        as_dict = request if isinstance(request, dict) else _resources_dict(request)
        key = json.dumps(as_dict, sort_keys=True, default=str)
        groups.setdefault(key, (request, []))[1].append(job)
    for request, group in groups.values():
        start_packed(
            group,
            request,
            remote_info.max_allocations or max(1, len(group)),
            system_name=remote_info.sys_name,
            header_extra=remote_info.header_extra,
            exact_fit=remote_info.exact_fit,
            partial_node=remote_info.partial_node,
            force_rerun=force_rerun,
            job_array=remote_info.job_array,
        )


def packed(remote_info: RemoteInfo) -> bool:
    """True when chunks are packed into allocations (``max_allocations`` or ``job_array``)."""
    return remote_info.max_allocations is not None or remote_info.job_array


def _job_request(job: Any, remote_info: RemoteInfo) -> Any:
    """The request a job runs with: a failure policy's raise of the user's request (a rerun
    goes on from it), unless the user has changed the request since -- theirs then wins."""
    info = job.row["info"]
    raised = info.get("resources")
    if raised and info.get("resources_raised_from") == _normalised(remote_info.resources):
        return raised
    return remote_info.resources


def _normalised(resources: Any) -> dict:
    """A request as comparable keyword arguments ("10m" and 600 are the same time)."""
    from expyre.resources import Resources

    return _resources_dict(Resources.coerce(resources))


def start_job(job: Any, remote_info: RemoteInfo, force_rerun: bool = False) -> None:
    job.start(
        resources=_job_request(job, remote_info),
        system_name=remote_info.sys_name,
        header_extra=remote_info.header_extra,
        exact_fit=remote_info.exact_fit,
        partial_node=remote_info.partial_node,
        force_rerun=force_rerun,
    )


def start_new_and_failed_jobs(
    jobs: Sequence[Any],
    remote_info: RemoteInfo,
    retry_failed: bool = False,
    rerun_finished: Sequence[Any] = (),
) -> None:
    """Submit every job that is not submitted yet, and retry those that failed earlier.

    A failed job is left unprocessed, so a rerun finds it ``failed``/``died`` here: its
    items are ones the operation still lacks. With ``ignore_failed_jobs`` it runs again,
    once per rerun, while finished jobs are reused. With ``retry_failed`` (a queued
    operation using the item store: a rerun runs every item without a result) so does a
    job whose function raised (``failed``), except one whose environment is broken
    (``bad_environment``): it would fail again at once, so it is reported until the
    environment is fixed and the job reset (``xpr reset_status``). A job that died goes
    through its failure policy when it is gathered, as in the run that saw it die.
    Otherwise the rerun reports the same failure again.

    ``rerun_finished`` are jobs among ``jobs`` that finished, yet their items still lack a
    result (the operation returned None for them, e.g. ``skip_failed``): they run again,
    or those items could never be retried.
    """

    def retried(job: Any) -> bool:
        if job.status not in ("failed", "died"):
            return False
        if remote_info.ignore_failed_jobs:
            return True
        return (
            retry_failed
            and job.status == "failed"
            and job.row.get("failure_category") != "bad_environment"
        )

    again = {id(job) for job in rerun_finished if job.status in ("succeeded", "processed")}
    failed = [job for job in jobs if retried(job) or id(job) in again]
    failed_ids = {id(job) for job in failed}
    if failed:
        print(
            f"wfl: {remote_info.job_name}: resubmitting {len(failed)} of {len(jobs)} job(s) "
            "that failed, or left items without a result, in an earlier run; reusing the others",
            file=sys.stderr,
        )
        start_jobs(failed, remote_info, force_rerun=True)
    start_jobs([job for job in jobs if id(job) not in failed_ids], remote_info)


#: splits a failed chunk job into smaller jobs, not started (None: it cannot be split)
SplitJob = Callable[[Any], "list[Any] | None"]


def gather(
    jobs: list[Any],
    remote_info: RemoteInfo,
    description: str,
    split_job: SplitJob | None = None,
    job_inputs: Callable[[Any], Sequence[str]] | None = None,
    on_finished: Callable[[Any, Any], None] | None = None,
) -> list[Any]:
    """Wait for all jobs, returning their values in job order.

    A failed job goes through ``remote_info.failure_policies`` (see
    :mod:`wfl.autoparallelize.failure_policy`): it is resubmitted (unchanged, or with more
    time or memory), split into smaller jobs by ``split_job`` (whose values, lists, are
    concatenated in order), or reported. Failures that remain are collected (all of them)
    and raised together; with ``ignore_failed_jobs`` their value is :data:`FAILED` and the
    caller tags their inputs. ``job_inputs(job)`` names a job's input items for reports.
    ``on_finished(job, value)`` is called as each job (or piece of a split job) finishes,
    before anything else is decided about it: with its value, or with :data:`FAILED` when
    it failed (before a policy runs it again), so what it finished can be kept at once.
    """
    from expyre.func import ExPyRe, RemoteJobError
    from expyre.poll import wait_for_jobs

    values: list[Any] = [None] * len(jobs)
    # a job's place: (index of the original job, order among the pieces it was split into)
    place = {job.id: (i, ()) for i, job in enumerate(jobs)}
    known = {job.id: job for job in jobs}
    pieces: dict[int, list[tuple[tuple, Any]]] = {}
    failures: list[JobFailure] = []
    failed_index: set[int] = set()
    pending = list(jobs)
    idle_rounds = 0  # rounds in a row whose allocations all ended without running a chunk
    # chunks of a packed run that a failure policy sends back: packed again, all those of
    # one poll together (a node failure ends many at once), at the next poll or round end
    to_pack: list[Any] = []

    def start_to_pack() -> None:
        start_jobs(list(to_pack), remote_info)
        to_pack.clear()

    with JobProgress(description, len(jobs)) as progress:

        def on_progress(counts: dict[str, int], elapsed: float) -> None:
            start_to_pack()
            progress.update(counts, elapsed)

        while pending:
            again, unclaimed, n_returned = [], [], 0
            for job in wait_for_jobs(
                pending,
                timeout=remote_info.timeout,
                check_interval=remote_info.check_interval,
                on_progress=on_progress,
            ):
                i, order = place[job.id]
                n_returned += 1
                if job.status == "created":  # packed, its allocations ended first: never ran
                    unclaimed.append(job)
                    continue
                try:
                    value = job.get_results(timeout=0)[0]
                except RemoteJobError as error:
                    if on_finished is not None:
                        on_finished(job, FAILED)
                    new_jobs, why, fits = _apply_policy(job, error, remote_info, split_job)
                    if new_jobs is None:
                        inputs = job_inputs(job) if job_inputs is not None else ()
                        attempts = [
                            a.get("reason") or "" for a in job.row["info"].get("attempts", [])
                        ]
                        failures.append(
                            JobFailure(
                                job.name, job.id, str(job.stage_dir), error,
                                error.failure_category, why, list(inputs), attempts, fits,
                            )
                        )  # fmt: skip
                        failed_index.add(i)
                        continue
                    for n, new_job in enumerate(new_jobs):
                        if new_job is not job:
                            place[new_job.id] = (i, (*order, n))
                            known[new_job.id] = new_job
                    if packed(remote_info):
                        to_pack.extend(new_jobs)
                    else:
                        start_jobs(new_jobs, remote_info)
                    again.extend(new_jobs)
                    continue
                if on_finished is not None:
                    on_finished(job, value)
                if order == () and job is jobs[i]:
                    values[i] = value
                else:
                    pieces.setdefault(i, []).append((order, value))
            idle_rounds = idle_rounds + 1 if unclaimed and len(unclaimed) == n_returned else 0
            if idle_rounds >= MAX_IDLE_PACK_ROUNDS:
                # an allocation that never gets to run a chunk (its environment fails inside
                # the queue job, say) would be packed again forever: report it instead
                failures += [_never_ran(job, idle_rounds) for job in unclaimed]
                failed_index.update(place[job.id][0] for job in unclaimed)
                unclaimed = []
            to_pack.extend(unclaimed)
            start_to_pack()
            pending = again + unclaimed
    for i, parts in pieces.items():
        values[i] = [v for _, part in sorted(parts, key=lambda p: p[0]) for v in part]
    if failures and not remote_info.ignore_failed_jobs:
        raise QueuedJobsFailed(failures, len(jobs))
    failed_ids = {f.job_id for f in failures}
    for i in failed_index:
        values[i] = FAILED
    ExPyRe.refresh_all(known.values())  # one query, not one per job
    for job_id, (i, _) in place.items():
        job = known[job_id]
        # a split job's original stays "died": its pieces carry its result
        ok = job_id not in failed_ids and i not in failed_index
        if ok and job.status == "succeeded":
            job.mark_processed()
    return values


#: packing rounds in a row in which every allocation ended without running any chunk,
#: after which the chunks are reported as failed instead of being packed again
MAX_IDLE_PACK_ROUNDS = 3


def _never_ran(job: Any, rounds: int) -> JobFailure:
    """The failure report of a packed chunk that no allocation ever ran."""
    error = RuntimeError(
        f"its allocations ended {rounds} times in a row without running any chunk; read "
        "their output (under _expyre/packs/, or the system's rundir/_packs/ on a cluster) "
        "and check the system's 'commands' and python inside a queue job "
        f"(xpr check {job.system_name or 'SYSTEM'}); a rerun packs the chunk again"
    )
    return JobFailure(
        job.name,
        job.id,
        str(job.stage_dir),
        error,
        "bad_environment",
        "packed again would only repeat it",
    )


def _apply_policy(
    job: Any, error: BaseException, remote_info: RemoteInfo, split_job: SplitJob | None
) -> tuple[list[Any] | None, str, str]:
    """Act on a failed job's policy: the jobs to start and wait for instead (the job sent
    back to ``created``, or the new halves of a split), or (None, why not, remedy that fits
    why not -- "" for the category's own)."""
    from expyre.system import get_system

    category = getattr(error, "failure_category", None) or "unknown"
    row = job.refresh().row
    # a job already resubmitted with more time or memory grows from there, also after a rerun
    resources = _job_request(job, remote_info)
    if not isinstance(resources, dict):
        resources = _resources_dict(resources)
    try:
        partitions = get_system(job.system_name).config.partitions
    except Exception:  # noqa: BLE001 - a system gone from config.json: only plain policies
        partitions = {}
    items = row["info"].get("num_items")
    decision = decide(
        category=category,
        policies=effective_policies(remote_info.failure_policies, remote_info.resubmit_killed_jobs),
        resources=resources,
        partitions=partitions,
        submissions=row["n_submissions"],
        num_items=items if isinstance(items, int) else 1,
        job_label=f"job {job.name} ({job.id})",
        exact_fit=remote_info.exact_fit,
        partial_node=remote_info.partial_node,
        max_attempts=remote_info.max_attempts,
    )
    if decision.action == "fail":
        return None, decision.message, decision.remedy
    if decision.action == "split":
        new_jobs = split_job(job) if split_job is not None else None
        if not new_jobs:
            return None, f"{category}: this job cannot be split", ""
        print(f"expyre: {decision.message}", file=sys.stderr, flush=True)
        job.record_attempt(decision.message)
        return new_jobs, "", ""
    print(f"expyre: {decision.message}", file=sys.stderr, flush=True)
    job.prepare_rerun(
        decision.message,
        decision.resources,
        info={"resources_raised_from": _normalised(remote_info.resources)},
    )
    return [job], "", ""


def _resources_dict(resources: Any) -> dict:
    """A Resources object as the keyword arguments that rebuild it."""
    out: dict[str, Any] = {"max_time": resources.max_time_s}
    for field, key in (
        ("num_nodes", "num_nodes"),
        ("num_cores", "num_cores"),
        ("max_mem_tot_kB", "max_mem_tot"),
        ("max_mem_per_core_kB", "max_mem_per_core"),
        ("partitions", "partitions"),
    ):
        value = getattr(resources, field)
        if value is not None:
            out[key] = list(value) if field == "partitions" else value
    return out
