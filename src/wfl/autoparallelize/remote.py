"""The queued path of autoparallelize: items -> (item store) -> chunks -> jobs -> results.

1. Each item gets its own key (:mod:`wfl.autoparallelize.items`). Items whose result is in
   the project's item store are taken from it; items that a job of an earlier run computes
   are waited for (a job still in its queue) or read from that job now (a finished job
   whose driver was killed before gathering it). Only the other items are queued.
2. They are split into chunks of ``num_inputs_per_queued_job``; each chunk becomes one
   expyre job running :func:`wfl.autoparallelize.in_job.run_chunk_in_job`. The job key is
   made of :class:`~wfl.autoparallelize.in_job.ChunkCall` alone (the operation, the chunk's
   items and generators, the arguments minus ``hash_ignore``, where the items go, and the
   initializer unless ignored); :class:`~wfl.autoparallelize.in_job.ChunkSettings` (pool
   chunk size, ignored arguments) stays out of it. A rerun that forms the same chunk finds
   the same job.
3. Jobs are submitted and gathered (:mod:`wfl.autoparallelize.queued_jobs`); each job's
   items are stored as it finishes -- also the items a failed or killed job finished.
4. Results are returned in input order; the caller stores each at its input's location.

With ``RemoteInfo(reuse_items=False)`` step 1 and the storing are skipped: only whole jobs
are reused, by their key.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from wfl.autoparallelize.in_job import (
    QUEUE_SELECTION_ENV_VARS,
    ChunkCall,
    ChunkSettings,
    call_in_job,
    run_chunk_in_job,
)
from wfl.autoparallelize.queued_jobs import (
    FAILED,
    FAILED_JOB_TAG,
    JobFailure,
    QueuedJobsFailed,
    failure_classes,
    gather,
    start_job,
    start_jobs,
    start_new_and_failed_jobs,
)
from wfl.autoparallelize.remoteinfo import RemoteInfo

__all__ = [
    "FAILED",
    "FAILED_JOB_TAG",
    "QUEUE_SELECTION_ENV_VARS",
    "JobFailure",
    "QueuedJobsFailed",
    "failure_classes",
    "gather",
    "job_arguments",
    "job_env_vars",
    "make_job",
    "plan_queued",
    "run_queued",
    "start_job",
    "start_jobs",
    "start_new_and_failed_jobs",
]


def job_env_vars(remote_info: RemoteInfo) -> list[str]:
    """The job's env vars: the user's, plus a pool as wide as the job's cores per node."""
    env = list(remote_info.env_vars)
    if not any(e.split("=", 1)[0] == "WFL_NUM_PYTHON_SUBPROCESSES" for e in env):
        env.append("WFL_NUM_PYTHON_SUBPROCESSES=${EXPYRE_NUM_CORES_PER_NODE}")
    return env


def job_arguments(
    remote_info: RemoteInfo,
    function: Callable,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    unkeyed: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of the ExPyRe of one job (shared with plan mode's key preview).

    The job calls ``function(*args, **kwargs, **unkeyed)``; ``unkeyed`` (keyword arguments
    of ``function``) is left out of the job key, everything else enters it.
    """
    unkeyed = dict(unkeyed or {})
    return dict(
        function=function,
        args=list(args),
        kwargs={**kwargs, **unkeyed},
        input_files=remote_info.input_files,
        output_files=remote_info.output_files,
        env_vars=job_env_vars(remote_info),
        pre_run_commands=remote_info.pre_cmds,
        post_run_commands=remote_info.post_cmds,
        hash_ignore=list(unkeyed),
    )


def make_job(
    remote_info: RemoteInfo,
    name: str,
    function: Callable,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    unkeyed: dict[str, Any] | None = None,
) -> Any:
    """One expyre job; see :func:`job_arguments`.

    A whole call (a fit) is ``make_job(info, name, call_in_job, [f, args, kwargs], {})``,
    as :func:`whole_call_job` builds it.
    """
    from expyre.func import ExPyRe

    return ExPyRe(name, **job_arguments(remote_info, function, args, kwargs, unkeyed))


def whole_call_job(
    remote_info: RemoteInfo, name: str, function: Callable, args: Sequence, kwargs: dict
) -> Any:
    """The job of a whole call ``function(*args, **kwargs)``, all of it in the job key."""
    return make_job(remote_info, name, call_in_job, [function, list(args), dict(kwargs)], {})


@dataclass(frozen=True)
class _KeyParts:
    """A call split into what enters job and item keys and what does not."""

    keyed_kwargs: dict
    unkeyed_kwargs: dict
    keyed_initializer: tuple | None
    unkeyed_initializer: tuple | None
    ignored: tuple[str, ...]

    @classmethod
    def of(cls, kwargs: dict, autopara_info: Any, remote_info: RemoteInfo) -> _KeyParts:
        ignored = set(remote_info.hash_ignore) | set(
            getattr(autopara_info, "hash_ignore", []) or []
        )
        initializer = autopara_info.initializer
        init_ignored = "initializer" in ignored
        return cls(
            keyed_kwargs={k: v for k, v in kwargs.items() if k not in ignored},
            unkeyed_kwargs={k: v for k, v in kwargs.items() if k in ignored},
            keyed_initializer=None if init_ignored else initializer,
            unkeyed_initializer=initializer if init_ignored else None,
            ignored=tuple(sorted(ignored)),
        )

    def chunk_job_arguments(
        self,
        op: Callable,
        items: list,
        item_rngs: list | None,
        positions: list[int],
        args: Sequence[Any],
        autopara_info: Any,
    ) -> tuple[Callable, list, dict, dict]:
        """``(function, args, kwargs, unkeyed)`` of the job of the items at ``positions``."""
        call = ChunkCall(
            op=op,
            items=[items[i] for i in positions],
            item_rngs=None if item_rngs is None else [item_rngs[i] for i in positions],
            args=list(args),
            kwargs=self.keyed_kwargs,
            iterable_arg=autopara_info.iterable_arg,
            initializer=self.keyed_initializer,
        )
        settings = ChunkSettings(
            num_inputs_per_python_subprocess=autopara_info.num_inputs_per_python_subprocess,
            unkeyed_kwargs=self.unkeyed_kwargs,
            unkeyed_initializer=self.unkeyed_initializer,
        )
        return run_chunk_in_job, [call], {}, {"settings": settings}


_MISSING = object()


def run_queued(
    op: Callable,
    items: list,
    item_rngs: list | None,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    autopara_info: Any,
    remote_info: RemoteInfo,
    input_digests: Sequence[bytes] | None = None,
    preflight: Callable[[], None] | None = None,
) -> list:
    """Run an autoparallelized operation as queued jobs; one result per item, in input order.

    Parameters
    ----------
    op : callable
        The operation over a list of items.
    items : sequence
        The input items (copies, carrying their locations in ``info``: failure reports name
        them). Only the items sent to jobs are read: a lazy sequence saves copying the
        others (:class:`wfl.autoparallelize.base.LocatedCopies`).
    item_rngs : list of numpy.random.Generator or None
        One child generator per item, spawned in input order by the caller.
    args, kwargs
        The operation's other arguments (not the OutputSpec: where results go does not
        change what is computed, and the caller stores them).
    autopara_info : AutoparaInfo
        Pool settings (``num_inputs_per_python_subprocess`` is used inside each job),
        ``iterable_arg``, ``initializer``, ``hash_ignore``.
    remote_info : RemoteInfo
        Job splitting, resources, failure policy, ``reuse_items``.
    input_digests : sequence of bytes, optional
        :func:`wfl.autoparallelize.completion.input_digests` of ``items``, if computed
        already (for the operation's completion key).
    preflight : callable, optional
        Checks the system and arguments (raises naming every problem); called before any
        job is formed, and not at all when every item is in the item store.

    Returns
    -------
    list
        One result per item; the input tagged :data:`FAILED_JOB_TAG` for an item whose job
        failed (``ignore_failed_jobs``).
    """
    from expyre.stagedir import staging_batch
    from expyre.stale import stale_jobs_report

    parts = _KeyParts.of(kwargs, autopara_info, remote_info)
    results: list = [_MISSING] * len(items)
    session = _ItemSession.open(
        op, args, kwargs, items, item_rngs, autopara_info, remote_info, input_digests
    )
    span: dict[str, list[int]] = {}  # job id -> the input positions of its items

    def chunk_job(name: str, positions: list[int]) -> Any:
        job_args = parts.chunk_job_arguments(op, items, item_rngs, positions, args, autopara_info)
        job = make_job(remote_info, name, *job_args)
        span[job.id] = positions
        if session is not None:
            session.claim(job, positions)  # before submission: a rerun finds the job by its items
        if job.row["info"].get("num_items") != len(positions):
            job.update_info({"num_items": len(positions)})  # whether it can be split
        return job

    def split_job(job: Any) -> list[Any] | None:
        positions = span[job.id]
        if len(positions) < 2:
            return None
        middle = (len(positions) + 1) // 2
        return [
            chunk_job(f"{job.name}_{part}", piece)
            for part, piece in (("a", positions[:middle]), ("b", positions[middle:]))
        ]  # started by gather: packed with others in a packed run

    def job_inputs(job: Any) -> list[str]:
        from wfl.configset import LOC_KEY

        return [str(items[i].info.get(LOC_KEY)) for i in span.get(job.id, [])]

    # from the lookup until the new jobs have claimed their items, no other driver looks:
    # one that comes later finds these jobs and waits for them instead of duplicating them
    with session.store.planning() if session is not None else contextlib.nullcontext():
        adopted: list[Any] = []
        if session is not None:
            session.fill_from_store(results)
            adopted = session.harvest_and_adopt(results)
            _test_pause_after_lookup()
        waiting = session.keys_of_jobs(adopted) if session is not None else set()
        todo = [
            i
            for i, r in enumerate(results)
            if r is _MISSING and (session is None or session.keys.keys[i] not in waiting)
        ]
        if preflight is not None and (todo or adopted):
            preflight()
        chunk_size = remote_info.chunk_size(autopara_info.num_inputs_per_python_subprocess)
        if session is not None:
            n_waiting = session.n_waiting(results, waiting)
            n_reused = len(items) - len(todo) - n_waiting
            session.report(len(items), n_reused, n_waiting, len(todo), chunk_size)
        jobs = []
        # jobs of edited code: cancelled, and ONE warning for all; the jobs' calls synced to
        # disk and their items claimed once for all of them (still under the planning lock)
        with stale_jobs_report(), staging_batch(), _claims_together(session):
            for n, start in enumerate(range(0, len(todo), chunk_size)):
                positions = todo[start : start + chunk_size]
                jobs.append(chunk_job(f"{remote_info.job_name}_chunk_{n}", positions))
    # with the item store, a job formed for items without a result that finished earlier
    # (the same chunk, so the same key) returned None for them: it must run again
    start_new_and_failed_jobs(
        [*jobs, *adopted],
        remote_info,
        retry_failed=session is not None,
        rerun_finished=jobs if session is not None else (),
    )
    on_finished = session.on_finished if session is not None else None
    values = gather([*jobs, *adopted], remote_info, remote_info.job_name, split_job, job_inputs,
                    on_finished)  # fmt: skip
    failed_positions: set[int] = set()
    for job, value in zip(jobs, values, strict=False):
        if value is FAILED:
            failed_positions.update(span[job.id])
            continue
        for i, result in zip(span[job.id], value, strict=True):
            results[i] = result
    if session is not None:
        # items of adopted jobs, and the items a failed job finished before it failed
        session.fill_from_store(results)
        failed_positions |= session.positions_of_failed(results, adopted, values[len(jobs) :])
    out = []
    for i, result in enumerate(results):
        if result is _MISSING:
            # a failed job's item without a result (ignore_failed_jobs), or None from the op
            result = _tag_failed(items[i]) if i in failed_positions or session is None else None
        out.append(result)
    return out


def _test_pause_after_lookup() -> None:
    """Tests only: ``WFL_TEST_ITEM_LOOKUP_DELAY`` seconds between a call's item lookup and
    the claims of its new jobs, so a test can start a second driver inside that window."""
    delay = os.environ.get("WFL_TEST_ITEM_LOOKUP_DELAY")
    if delay:
        time.sleep(float(delay))


@contextmanager
def _claims_together(session: _ItemSession | None) -> Iterator[None]:
    """Record the claims of the jobs created in the block in one transaction at its end
    (before any is submitted), not one per job."""
    if session is None:
        yield
        return
    session.pending_claims = []
    try:
        yield
        session.store.claim_many(session.pending_claims)
    finally:
        session.pending_claims = None


class _ItemSession:
    """The item store as one queued call uses it (see :func:`run_queued`)."""

    def __init__(self, store: Any, keys: Any, job_name: str) -> None:
        self.store = store
        self.keys = keys
        self.job_name = job_name
        #: claims waiting for :func:`_claims_together` to record them (None: at once)
        self.pending_claims: list[tuple[str, list[str]]] | None = None
        self._position = {}
        for i, key in enumerate(keys.keys):
            self._position.setdefault(key, []).append(i)

    @classmethod
    def open(
        cls, op, args, kwargs, items, item_rngs, autopara_info, remote_info, input_digests=None
    ) -> _ItemSession | None:
        """The session of a call, or None with ``reuse_items=False``."""
        if not remote_info.reuse_items:
            return None
        from expyre.itemstore import item_store
        from wfl.autoparallelize.items import item_keys

        parts = _KeyParts.of(kwargs, autopara_info, remote_info)
        keys = item_keys(
            op, args, parts.keyed_kwargs, items, item_rngs, parts.keyed_initializer,
            parts.ignored, autopara_info.iterable_arg, input_digests,
        )  # fmt: skip
        session = cls(item_store(), keys, remote_info.job_name)
        dropped = session.store.drop_stale(keys.operation, keys.arguments, keys.code)
        if dropped:
            print(
                f"wfl: {remote_info.job_name}: dropped {dropped} stored item(s) of "
                f"{keys.operation} made by earlier code (code changed)",
                file=sys.stderr,
            )
        return session

    def fill_from_store(self, results: list) -> None:
        """Put the stored result of every missing item into ``results``."""
        from wfl.autoparallelize.items import load_items

        missing = [self.keys.keys[i] for i, r in enumerate(results) if r is _MISSING]
        if not missing:
            return
        for key, value in load_items(self.store, missing).items():
            for i in self._position[key]:
                if results[i] is _MISSING:
                    results[i] = value

    def harvest_and_adopt(self, results: list) -> list[Any]:
        """Jobs of earlier runs (or of another driver) that compute missing items: read the
        finished ones now (their driver was killed before gathering them), return those
        still to be submitted, queued or running (to be waited for, not duplicated)."""
        from expyre.func import ExPyRe
        from expyre.jobsdb import FINAL_STATES, LIVE_STATES, jobs_db
        from wfl.autoparallelize.items import harvest_job

        missing = [self.keys.keys[i] for i, r in enumerate(results) if r is _MISSING]
        if not missing:
            return []
        claims = self.store.claiming_jobs(missing)
        job_ids = sorted({j for ids in claims.values() for j in ids})
        if not job_ids:
            return []
        rows = jobs_db().select(ids=job_ids)
        adopted, harvested = [], 0
        for row in rows:
            (job,) = ExPyRe.from_jobsdb([row])
            # a staged "created" job is one another driver is about to submit (or one whose
            # driver was killed before submitting it): starting it is safe either way, as
            # only one submission of a job is ever recorded
            waiting = row["status"] == "created" and row["info"].get("staged")
            if row["status"] in LIVE_STATES or waiting:
                adopted.append(job)
            elif row["status"] in FINAL_STATES:
                harvested += harvest_job(self.store, self.keys, job)
                if row["status"] == "succeeded":
                    job.mark_processed()  # its results are kept now, as gathering does
        if harvested:
            self.fill_from_store(results)
        return adopted

    def keys_of_jobs(self, jobs: Sequence[Any]) -> set[str]:
        return {key for job in jobs for key in self.store.claimed_keys(job.id)}

    def n_waiting(self, results: list, waiting: set[str]) -> int:
        return sum(
            1 for i, r in enumerate(results) if r is _MISSING and self.keys.keys[i] in waiting
        )

    def report(self, n_items: int, n_reused: int, n_waiting: int, n_new: int, chunk: int) -> None:
        """Record the call's counts (``xpr items``) and say what was reused on stderr."""
        self.store.record_run(
            self.keys.operation, self.job_name, n_items, n_reused, n_waiting, n_new
        )
        if n_reused or n_waiting:
            n_jobs = -(-n_new // chunk) if n_new else 0
            waiting = f", {n_waiting} from jobs of an earlier run still queued" if n_waiting else ""
            print(
                f"wfl: {self.job_name}: {n_reused} of {n_items} item(s) reused from the item "
                f"store{waiting}; {n_new} to compute in {n_jobs} job(s)",
                file=sys.stderr,
            )

    def claim(self, job: Any, positions: list[int]) -> None:
        keys = [self.keys.keys[i] for i in positions]
        if self.pending_claims is not None:
            self.pending_claims.append((job.id, keys))
        else:
            self.store.claim(job.id, keys)

    def on_finished(self, job: Any, value: Any) -> None:
        """Store what a job computed, the moment it is gathered (a failed one: its saved items)."""
        from wfl.autoparallelize.items import harvest_job

        if value is not FAILED:
            # processed first: a driver killed between the two finds a processed job whose
            # items are missing, and reads them from it again (the other order would leave a
            # finished job that no run ever marks processed)
            job.mark_processed()
        harvest_job(self.store, self.keys, job, None if value is FAILED else value)

    def positions_of_failed(
        self, results: list, adopted: Sequence[Any], values: Sequence[Any]
    ) -> set[int]:
        """Missing positions whose adopted job failed (their inputs are tagged)."""
        failed_keys = {
            key
            for job, value in zip(adopted, values, strict=True)
            if value is FAILED
            for key in self.store.claimed_keys(job.id)
        }
        return {
            i for i, r in enumerate(results) if r is _MISSING and self.keys.keys[i] in failed_keys
        }


def plan_queued(
    op: Callable,
    items: list,
    item_rngs: list | None,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    autopara_info: Any,
    remote_info: RemoteInfo,
    input_digests: Sequence[bytes] | None = None,
) -> dict[str, Any]:
    """What :func:`run_queued` would do, without doing it (plan mode; writes nothing).

    Returns
    -------
    dict
        ``items_reused`` (in the item store), ``items_new`` (to be queued) and ``jobs``
        (:func:`wfl.autoparallelize.plan.planned_job` of each job the new items form).
    """
    from wfl.autoparallelize.plan import planned_job

    parts = _KeyParts.of(kwargs, autopara_info, remote_info)
    todo = list(range(len(items)))
    if remote_info.reuse_items:
        from expyre.itemstore import item_store
        from wfl.autoparallelize.items import item_keys

        keys = item_keys(
            op, args, parts.keyed_kwargs, items, item_rngs, parts.keyed_initializer,
            parts.ignored, autopara_info.iterable_arg, input_digests,
        )  # fmt: skip
        found = item_store().lookup(keys.keys)
        todo = [i for i in todo if keys.keys[i] not in found]
    chunk_size = remote_info.chunk_size(autopara_info.num_inputs_per_python_subprocess)
    jobs = []
    for n, start in enumerate(range(0, len(todo), chunk_size)):
        positions = todo[start : start + chunk_size]
        job_args = parts.chunk_job_arguments(op, items, item_rngs, positions, args, autopara_info)
        jobs.append(planned_job(remote_info, f"{remote_info.job_name}_chunk_{n}", *job_args))
    return {"items_reused": len(items) - len(todo), "items_new": len(todo), "jobs": jobs}


def _tag_failed(item: Any) -> Any:
    tagged = item.copy()
    tagged.info[FAILED_JOB_TAG] = True
    return tagged
