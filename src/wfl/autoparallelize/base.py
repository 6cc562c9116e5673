"""``autoparallelize``: run an operation over a ConfigSet, store results in an OutputSpec.

The life of a call, in one direction:

1. merge ``autopara_info`` over the operation's defaults (never touching the caller's),
2. collect the inputs (copies) with their locations, and the operation's key,
3. skip-if-done: matching completion record -> return the stored outputs; then outputs
   that cannot be written fail before any work; preflight
   (:mod:`~wfl.autoparallelize.preflight`): what would fail after the queue wait (an unknown
   system, resources no partition fits, missing input files, unpicklable arguments) fails
   before anything is submitted -- and is not needed when every item is in the item store,
4. one child random generator per item, spawned from the caller's ``rng`` in input order,
5. results = :func:`~wfl.autoparallelize.pool.run_items` (local pool) or ``run_queued``
   (queued jobs) -- decided by :func:`_choose_remote_info` alone,
6. store each result at its own input's location, close the outputs with the record
   (marked incomplete when items failed -- dropped by ``skip_failed``, or from queued jobs
   that failed under ``ignore_failed_jobs`` -- so a rerun retries them),
7. return the outputs as a ConfigSet.
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from expyre.digest import AtomsAsCopy, located_copies_digests
from wfl.autoparallelize import plan
from wfl.autoparallelize.autoparainfo import AutoparaInfo
from wfl.autoparallelize.completion import (
    incomplete_marker,
    operation_key,
    outputs_done,
)
from wfl.autoparallelize.docstring import autoparallelize_docstring  # noqa: F401 - 0.3.5 name
from wfl.autoparallelize.pool import run_items
from wfl.autoparallelize.preflight import (
    PreflightError,
    check_outputs,
    check_queued_call,
    named_arguments,
    pickling_problems,
)
from wfl.autoparallelize.select import select_remote_info
from wfl.autoparallelize.store import store_results
from wfl.configset import LOC_KEY, ConfigSet, OutputSpec

if TYPE_CHECKING:
    from wfl.autoparallelize.remoteinfo import RemoteInfo

logger = logging.getLogger(__name__)


def _choose_remote_info(autopara_info) -> RemoteInfo | None:
    """The one place that decides "pool or queue": None means the local pool."""
    return select_remote_info(autopara_info)


def autoparallelize(
    op: Callable,
    *args: Any,
    default_autopara_info: AutoparaInfo | Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> ConfigSet:
    """Run ``op`` over all configs of ``inputs``, storing results in ``outputs``.

    Parameters
    ----------
    op : callable
        Operation over a list of items returning one result per item (Atoms, list of
        Atoms, or None for a failed item). If it takes ``rng``, it receives the list of the
        items' own ``numpy.random.Generator``.
    *args
        ``inputs`` (ConfigSet or anything ConfigSet accepts), ``outputs`` (OutputSpec),
        then further positional arguments of ``op``. ``inputs=``/``outputs=`` may also be
        given as keywords.
    default_autopara_info : AutoparaInfo or dict, optional
        The operation's defaults, under the caller's ``autopara_info=``.
    **kwargs
        ``autopara_info=`` (AutoparaInfo or dict), ``rng=`` (numpy Generator: each item gets
        a child spawned in input order, so results do not depend on how items are split),
        and further keyword arguments of ``op``.

    Returns
    -------
    ConfigSet
        The outputs, in input order.
    """
    user_info = kwargs.pop("autopara_info", None)
    info = AutoparaInfo.merged(user_info, default_autopara_info)
    args_list = list(args)
    name = getattr(op, "__name__", repr(op))
    inputs = _take(kwargs, args_list, "inputs", name)
    outputs = _take(kwargs, args_list, "outputs", name)
    return _run(op, inputs, outputs, args_list, kwargs, info)


def _take(kwargs: dict, args: list, name: str, op_name: str) -> Any:
    if name in kwargs:
        return kwargs.pop(name)
    if args:
        return args.pop(0)
    raise TypeError(f"{op_name}() needs {name!r}: call it as {op_name}(inputs, outputs, ...)")


def _pop_rng(op: Callable, kwargs: dict) -> Any:
    if "rng" not in kwargs:
        return None
    rng = kwargs.pop("rng")
    if rng is None:
        return None
    import numpy as np

    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            f"rng={rng!r} is not a numpy.random.Generator; pass e.g. rng=np.random.default_rng(42)"
        )
    params = inspect.signature(op).parameters
    if "rng" not in params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise ValueError(f"operation {op.__qualname__} takes no rng; remove the rng argument")
    return rng


class LocatedCopies(Sequence):
    """The inputs as the operation gets them: copies, each with its location in ``info``.

    Each copy is made the first time it is read, so items taken from the item store (never
    sent anywhere) are never copied. Copies protect the caller's structures: operations may
    change their items in place.

    Parameters
    ----------
    located : list of (str, Atoms)
        Each input's location and the caller's structure.
    """

    def __init__(self, located: list[tuple[str, Any]]) -> None:
        self._located = located
        self._copies: list[Any] = [None] * len(located)

    def __len__(self) -> int:
        return len(self._located)

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        copy = self._copies[index]
        if copy is None:
            loc, atoms = self._located[index]
            copy = atoms.copy()
            copy.info[LOC_KEY] = loc
            self._copies[index] = copy
        return copy


def _run(
    op: Callable, inputs: Any, outputs: Any, args: list, kwargs: dict, info: AutoparaInfo
) -> ConfigSet:
    if not isinstance(inputs, ConfigSet):
        inputs = ConfigSet(inputs)
    if not isinstance(outputs, OutputSpec):
        raise ValueError(
            f"outputs must be an OutputSpec, not {type(outputs).__name__}; "
            "pass e.g. OutputSpec('results.xyz') or OutputSpec() for memory"
        )
    rng = _pop_rng(op, kwargs)

    # the key is computed from the caller's configs as their located copies would be
    # digested (expyre.digest.AtomsAsCopy), so a finished operation is found again without
    # copying its inputs; copies are made only when there is work to do
    located = list(inputs.iter_located())
    locs = [loc for loc, _ in located]

    # chosen before the skip check, so a WFL_EXPYRE_INFO key of a finished step counts as used
    remote_info = _choose_remote_info(info)
    key_kwargs = dict(kwargs) if rng is None else {**kwargs, "rng": rng}
    # with the item store, each input's own digest (its item key) comes from the same pass
    # over the inputs as the operation's key: digesting 10,000 inputs once, not twice
    value_digests = None
    inputs_digest = None
    try:
        if remote_info is not None and remote_info.reuse_items:
            inputs_digest, value_digests = located_copies_digests(
                [atoms for _, atoms in located], LOC_KEY, locs
            )
        key = operation_key(
            op,
            args,
            key_kwargs,
            [AtomsAsCopy(atoms, {LOC_KEY: loc}) for loc, atoms in located]
            if inputs_digest is None
            else [],
            info.initializer,
            info.hash_ignore,
            info.iterable_arg,
            inputs_digest=inputs_digest,
        )
    except Exception:
        # arguments that cannot be digested: a queued call names them as it would anyway
        # (what cannot be sent to a job), otherwise they are named for the completion record
        if remote_info is not None:
            check_queued_call(op, args, kwargs, remote_info, info.iterable_arg, info.initializer)
        named = named_arguments(op, args, kwargs, info.iterable_arg)
        problems = pickling_problems(named, op.__qualname__, "digested for skip-if-done")
        if problems:
            raise PreflightError(op.__qualname__, problems) from None
        raise
    if not plan.active() and outputs_done(outputs, key):
        # a user rerunning a script should see why a step took no time (stderr, one line)
        print(
            f"wfl: {op.__qualname__}: outputs {', '.join(map(str, outputs.files or []))} "
            "are already complete "
            "(same operation, arguments, inputs and code); skipped",
            file=sys.stderr,
        )
        return outputs.to_ConfigSet()
    # a finished operation needs neither its system nor its arguments checked again; a
    # queued one checks them once it knows it has items to send (none: all in the item store)
    preflight = None
    if remote_info is not None:
        preflight = functools.partial(
            check_queued_call, op, args, kwargs, remote_info, info.iterable_arg, info.initializer
        )
    # copies only of the items that are sent somewhere (all but those in the item store)
    items = LocatedCopies(located)
    del located
    if plan.active():  # $WFL_PLAN: record what would run, run nothing
        if preflight is not None:
            preflight()
        return plan.plan_call(
            op, inputs, outputs, key, list(items), rng, args, kwargs, info, remote_info,
            value_digests,
        )  # fmt: skip

    # everything that would fail after the work (or the queue wait) fails before it
    outputs.written_by(key)
    check_outputs(op, outputs)

    # spawning after the key: the key must describe the generator as the caller gave it
    item_rngs = list(rng.spawn(len(items))) if rng is not None else None
    if remote_info is None:
        results = run_items(
            op,
            list(items),
            args,
            kwargs,
            num_python_subprocesses=info.num_python_subprocesses,
            num_inputs_per_python_subprocess=info.num_inputs_per_python_subprocess,
            initializer=info.initializer,
            item_rngs=item_rngs,
            iterable_arg=info.iterable_arg,
        )
    else:
        from wfl.autoparallelize.remote import run_queued

        results = run_queued(
            op, items, item_rngs, args, kwargs, info, remote_info, value_digests, preflight
        )
    # queued results are unpickled here: this call's own objects, stored without a copy
    n_failed = store_results(
        outputs, results, locs, info.skip_failed, owned=remote_info is not None
    )
    n_job_failed = _count_failed_job_items(results)
    if n_failed:
        logger.warning(
            "%s: %d of %d items failed and were skipped", op.__qualname__, n_failed, len(items)
        )
        # outputs without some items are not this operation's result: like failed jobs,
        # skipped items leave the record "incomplete", so a rerun tries them again instead
        # of skipping the step for good
        print(
            f"wfl: {op.__qualname__}: {n_failed} of {len(items)} items failed (the operation "
            "returned None for them; skip_failed left them out of the outputs); the outputs "
            "are marked incomplete: rerun the script to retry them",
            file=sys.stderr,
        )
    if n_job_failed:
        # a failed job is not an answer: the record says "incomplete", so the rerun redoes
        # the operation, reusing every finished job and resubmitting only the failed ones
        print(
            f"wfl: {op.__qualname__}: {n_job_failed} of {len(items)} items failed (their queued "
            "jobs failed; their inputs are in the outputs tagged "
            f"{_failed_job_tag()}=True); the outputs are marked incomplete: rerun the script "
            "to retry only those items (finished jobs are reused)",
            file=sys.stderr,
        )
    if n_failed or n_job_failed:
        outputs.close(completion_record={**key, **incomplete_marker(n_failed + n_job_failed)})
    else:
        outputs.close(completion_record=key)
    return outputs.to_ConfigSet()


def _failed_job_tag() -> str:
    from wfl.autoparallelize.remote import FAILED_JOB_TAG

    return FAILED_JOB_TAG


def _count_failed_job_items(results: list) -> int:
    """Items returned as their inputs tagged by a failed queued job (``ignore_failed_jobs``)."""
    tag = _failed_job_tag()
    return sum(1 for r in results if getattr(r, "info", {}).get(tag))
