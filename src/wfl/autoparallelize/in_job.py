"""What a queued job runs: one function per kind of job, and exactly what enters its key.

Two kinds of job, each calling ONE function here:

* a chunk of an autoparallelized operation: :func:`run_chunk_in_job` ``(call, settings)``.
  ``call`` (:class:`ChunkCall`) is everything that decides the results, and is the only
  argument that enters the job key; ``settings`` (:class:`ChunkSettings`) is how the chunk
  runs and what the user asked to leave out of keys (``hash_ignore``), never in the key;
* a whole call (a potential fit): :func:`call_in_job` ``(function, args, kwargs)``, all of
  it in the key.

This module is imported by every job, so it imports nothing heavy (the pool and expyre's
partial results are imported when the chunk runs).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "QUEUE_SELECTION_ENV_VARS",
    "ChunkCall",
    "ChunkSettings",
    "call_in_job",
    "run_chunk_in_job",
]

# Variables that select calls for the queue: a job must never queue its own work again.
QUEUE_SELECTION_ENV_VARS = (
    "WFL_EXPYRE_INFO",
    "WFL_GAP_SIMPLE_FIT_REMOTEINFO",
    "WFL_GAP_MULTISTAGE_FIT_REMOTEINFO",
    "WFL_ACE_FIT_REMOTEINFO",
)


def _no_queue_selection() -> None:
    """Switch queue selection off inside the job.

    Schedulers such as Slurm copy the submitting environment into the job, so the variables
    that sent this call to the queue would otherwise send its inner calls to the queue again.
    """
    for name in QUEUE_SELECTION_ENV_VARS:
        os.environ.pop(name, None)


def call_in_job(function: Callable, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """The body of a whole-call job: ``function(*args, **kwargs)`` without queue selection."""
    _no_queue_selection()
    return function(*args, **kwargs)


@dataclass(frozen=True)
class ChunkCall:
    """What one chunk job computes; every field enters the job key.

    Attributes
    ----------
    op : callable
        The operation over a list of items (its code enters the key's code fingerprint).
    items : list
        The chunk's items, by value.
    item_rngs : list of numpy.random.Generator or None
        One generator per item, spawned in input order from the caller's ``rng``.
    args : list
        The operation's other positional arguments.
    kwargs : dict
        Its keyword arguments, except those named in ``hash_ignore``.
    iterable_arg : int or str
        Where the items go in ``op``'s arguments.
    initializer : (callable, args) or None
        Run once per pool worker; None here when ``"initializer"`` is in ``hash_ignore``.
    """

    op: Callable
    items: list
    item_rngs: list | None
    args: list
    kwargs: dict
    iterable_arg: int | str = 0
    initializer: tuple | None = None


@dataclass(frozen=True)
class ChunkSettings:
    """How one chunk job runs; none of it enters the job key.

    Attributes
    ----------
    num_inputs_per_python_subprocess : int
        Items per call of the operation in the job's pool (results must not depend on it).
    unkeyed_kwargs : dict
        Keyword arguments of the operation named in ``hash_ignore``.
    unkeyed_initializer : (callable, args) or None
        The initializer, when ``"initializer"`` is in ``hash_ignore``.
    """

    num_inputs_per_python_subprocess: int = 1
    unkeyed_kwargs: dict = field(default_factory=dict)
    unkeyed_initializer: tuple | None = None


def run_chunk_in_job(call: ChunkCall, settings: ChunkSettings) -> list:
    """The body of a chunk job: one result per item of ``call.items``, in order.

    Each pool chunk's results are saved as they finish (:func:`expyre.partial.save_partial`,
    atomically, in the job directory), and the other pool chunks keep going when one
    raises: after a failure or a kill the driver keeps every finished item, and a run of
    this same job again (resubmitted by a failure policy) computes only the items that
    have no saved result.
    """
    _no_queue_selection()
    from expyre.partial import load_partial, save_partial
    from wfl.autoparallelize.pool import resolve_num_subprocesses, run_items

    job_dir = Path.cwd()  # the runner starts the call in the job directory
    saved = load_partial(job_dir)
    todo = [n for n in range(len(call.items)) if n not in saved]

    def save(start: int, results: list) -> None:
        # results that are None (a failed item) are not saved: the next run tries them again
        values = {todo[start + k]: r for k, r in enumerate(results) if r is not None}
        save_partial(job_dir, values)

    # WFL_NUM_PYTHON_SUBPROCESSES, set from the job's cores; but the job is a process of its
    # own already: a pool with one worker (one core, or one python-subprocess chunk of items)
    # would only add a process start, so that case runs here
    per_call = max(1, int(settings.num_inputs_per_python_subprocess))
    serial = min(resolve_num_subprocesses(None), -(-len(todo) // per_call)) <= 1
    computed = run_items(
        call.op,
        [call.items[n] for n in todo],
        tuple(call.args),
        {**call.kwargs, **settings.unkeyed_kwargs},
        num_python_subprocesses=0 if serial else None,
        num_inputs_per_python_subprocess=settings.num_inputs_per_python_subprocess,
        initializer=call.initializer or settings.unkeyed_initializer,
        item_rngs=None if call.item_rngs is None else [call.item_rngs[n] for n in todo],
        iterable_arg=call.iterable_arg,
        on_results=save,
        keep_going=True,
    )
    results = dict(saved)
    results.update(zip(todo, computed, strict=True))
    return [results[n] for n in range(len(call.items))]
