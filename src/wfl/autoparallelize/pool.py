"""Run an operation over items, serially or in a pool of Python subprocesses.

:func:`run_items` is the whole local execution engine: the driver uses it directly, and a
queued job runs its share of items through it too. It knows nothing about ConfigSet or
OutputSpec: items in, one result per item out, in input order.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from typing import Any

ENV_NUM_SUBPROCESSES = "WFL_NUM_PYTHON_SUBPROCESSES"

# If the user set any of these, they chose their own thread counts and we leave them alone.
_THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)

# State of one pool worker, set once by _init_worker (fork passes it without pickling).
_worker_state: dict[str, Any] = {}


def available_cores() -> int:
    """Number of CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_num_subprocesses(num_python_subprocesses: int | None) -> int:
    """Pool size to use: the given value, else env ``WFL_NUM_PYTHON_SUBPROCESSES``, else 0."""
    if num_python_subprocesses is not None:
        return int(num_python_subprocesses)
    text = os.environ.get(ENV_NUM_SUBPROCESSES, "").strip()
    if not text:
        return 0
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ValueError(
            f"env {ENV_NUM_SUBPROCESSES}={text!r} is not a number of subprocesses; "
            "set it to an int >= 0 (0 = serial) or unset it"
        )
    return value


def _call_op(
    op: Callable,
    chunk: list,
    rngs: list | None,
    args: Sequence,
    kwargs: dict,
    iterable_arg: int | str,
) -> list:
    """Call ``op`` on one chunk; check it returned one result per item."""
    call_args = list(args)
    call_kwargs = dict(kwargs)
    if isinstance(iterable_arg, str):
        call_kwargs[iterable_arg] = chunk
    else:
        call_args.insert(iterable_arg, chunk)
    if rngs is not None:
        call_kwargs["rng"] = rngs
    try:
        results = op(*call_args, **call_kwargs)
    except Exception as exc:
        # the traceback alone does not say which input broke: name it, wherever this runs
        # (imported here: a job that succeeds must not pay for importing configset)
        from wfl.configset import LOC_KEY

        locs = [getattr(item, "info", {}).get(LOC_KEY) for item in chunk]
        if any(loc is not None for loc in locs):
            exc.add_note(
                f"raised for the input item(s) at location(s) {', '.join(map(repr, locs))}"
            )
        raise
    results = list(results) if results is not None else None
    if results is None or len(results) != len(chunk):
        got = "None" if results is None else f"{len(results)} results"
        raise RuntimeError(
            f"operation {getattr(op, '__qualname__', op)!r} returned {got} for {len(chunk)} "
            "items; an operation must return one result (Atoms, list of Atoms or None) per item"
        )
    return results


def _limit_threads(num_workers: int) -> Any:
    """Limit BLAS/OpenMP threads so workers x threads <= cores, unless the user chose."""
    if any(os.environ.get(v) for v in _THREAD_ENV_VARS):
        return None
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=max(1, available_cores() // max(1, num_workers)))


def _init_worker(
    op: Callable,
    args: Sequence,
    kwargs: dict,
    iterable_arg: int | str,
    initializer: tuple[Callable, Sequence] | None,
    num_workers: int,
) -> None:
    _worker_state.update(op=op, args=args, kwargs=kwargs, iterable_arg=iterable_arg)
    # keep the limiter alive for the worker's lifetime
    _worker_state["thread_limits"] = _limit_threads(num_workers)
    if initializer is not None:
        func, init_args = initializer
        func(*init_args)


def _run_chunk_in_worker(task: tuple[list, list | None]) -> list:
    chunk, rngs = task
    s = _worker_state
    return _call_op(s["op"], chunk, rngs, s["args"], s["kwargs"], s["iterable_arg"])


def _run_numbered_chunk_in_worker(task: tuple[int, list, list | None]) -> tuple:
    """``(n, results, None)`` or ``(n, None, exception)``: one failed chunk must not stop
    the others (see ``keep_going`` in :func:`run_items`)."""
    n, chunk, rngs = task
    try:
        return n, _run_chunk_in_worker((chunk, rngs)), None
    except Exception as exc:  # noqa: BLE001 - handed to the parent, raised there
        return n, None, _picklable_exception(exc)


def _picklable_exception(exc: BaseException) -> BaseException:
    """``exc`` itself if it survives pickling, else a RuntimeError with its text."""
    import pickle
    import traceback

    text = "".join(traceback.format_exception(exc))
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:  # noqa: BLE001 - any pickling problem: keep the text
        exc = RuntimeError(repr(exc))
    # the worker's traceback does not travel with a pickled exception: keep its text
    exc.add_note(f"traceback in the pool worker:\n{text}")
    return exc


def run_items(
    op: Callable,
    items: Sequence,
    args: Sequence,
    kwargs: dict,
    *,
    num_python_subprocesses: int | None,
    num_inputs_per_python_subprocess: int,
    initializer: tuple[Callable, Sequence] | None,
    item_rngs: Sequence | None,
    iterable_arg: int | str = 0,
    on_results: Callable[[int, list], None] | None = None,
    keep_going: bool = False,
) -> list:
    """Run ``op`` over ``items`` in chunks; return one result per item, in input order.

    Parameters
    ----------
    op : callable
        ``op(chunk, *args, **kwargs)`` (chunk placed at ``iterable_arg``) returning a list
        with one result per item: Atoms, list of Atoms, or None for a failed item. When
        ``item_rngs`` is given it is also called with ``rng=`` the list of the chunk's
        per-item ``numpy.random.Generator``.
    items : sequence
        The items (already copied: ``op`` may change them in place).
    args, kwargs
        Further arguments of ``op``.
    num_python_subprocesses : int or None
        Pool size; None reads env ``WFL_NUM_PYTHON_SUBPROCESSES``; 0 runs serially here.
    num_inputs_per_python_subprocess : int
        Chunk size (items per call of ``op``).
    initializer : (callable, args) or None
        Run once per pool worker, or once here before a serial run.
    item_rngs : sequence of numpy.random.Generator, or None
        One generator per item.
    iterable_arg : int or str, default 0
        Position or keyword name of the argument of ``op`` that receives the chunk.
    on_results : callable, optional
        Called here as ``on_results(start, results)`` as soon as the chunk starting at item
        ``start`` has its results (in completion order), e.g. to save them.
    keep_going : bool
        When a chunk raises, still run the other chunks (their results reach
        ``on_results``), then raise the first failure in input order. Inside a queued job
        this keeps every item that can finish, so a rerun computes only the failed ones.

    Returns
    -------
    list
        ``len(items)`` results, result ``i`` belonging to ``items[i]``.
    """
    items = list(items)
    chunk_size = int(num_inputs_per_python_subprocess)
    if chunk_size < 1:
        raise ValueError(
            f"num_inputs_per_python_subprocess={chunk_size} must be >= 1; use a positive chunk size"
        )
    if item_rngs is not None and len(item_rngs) != len(items):
        raise ValueError(f"got {len(item_rngs)} item_rngs for {len(items)} items; need one each")
    starts = range(0, len(items), chunk_size)
    tasks = [
        (
            items[s : s + chunk_size],
            None if item_rngs is None else list(item_rngs[s : s + chunk_size]),
        )
        for s in starts
    ]
    num_workers = min(resolve_num_subprocesses(num_python_subprocesses), len(tasks))
    if on_results is not None or keep_going:
        return _run_reporting(
            op, tasks, chunk_size, args, kwargs, iterable_arg, initializer, num_workers,
            on_results, keep_going,
        )  # fmt: skip
    results: list = []
    if num_workers <= 0:
        if initializer is not None:
            func, init_args = initializer
            func(*init_args)
        for chunk, rngs in tasks:
            results.extend(_call_op(op, chunk, rngs, args, kwargs, iterable_arg))
        return results

    # fork: the op, its arguments and the initializer reach the workers without pickling,
    # so ops defined in a script or test module work; only items and results are pickled.
    context = multiprocessing.get_context("fork")
    init_args = (op, args, kwargs, iterable_arg, initializer, num_workers)
    with context.Pool(num_workers, initializer=_init_worker, initargs=init_args) as pool:
        for chunk_results in pool.imap(_run_chunk_in_worker, tasks, chunksize=1):
            results.extend(chunk_results)
    return results


def _run_reporting(
    op: Callable,
    tasks: list[tuple[list, list | None]],
    chunk_size: int,
    args: Sequence,
    kwargs: dict,
    iterable_arg: int | str,
    initializer: tuple[Callable, Sequence] | None,
    num_workers: int,
    on_results: Callable[[int, list], None] | None,
    keep_going: bool,
) -> list:
    """:func:`run_items` handing each chunk's results to ``on_results`` as it finishes."""
    by_chunk: dict[int, list] = {}
    errors: dict[int, BaseException] = {}

    def finished(n: int, results: list | None, error: BaseException | None) -> None:
        if error is not None:
            if not keep_going:
                raise error
            errors[n] = error
            return
        by_chunk[n] = results
        if on_results is not None:
            on_results(n * chunk_size, results)

    if num_workers <= 0:
        if initializer is not None:
            func, init_args = initializer
            func(*init_args)
        for n, (chunk, rngs) in enumerate(tasks):
            try:
                results = _call_op(op, chunk, rngs, args, kwargs, iterable_arg)
            except Exception as exc:
                finished(n, None, exc)
                continue
            finished(n, results, None)
    else:
        context = multiprocessing.get_context("fork")
        init_args = (op, args, kwargs, iterable_arg, initializer, num_workers)
        numbered = [(n, chunk, rngs) for n, (chunk, rngs) in enumerate(tasks)]
        with context.Pool(num_workers, initializer=_init_worker, initargs=init_args) as pool:
            # unordered: a chunk is saved the moment it is done, not after slower ones
            for n, results, error in pool.imap_unordered(
                _run_numbered_chunk_in_worker, numbered, chunksize=1
            ):
                finished(n, results, error)
    if errors:
        first = errors[min(errors)]
        if len(errors) > 1:
            first.add_note(
                f"{len(errors) - 1} other chunk(s) of {len(tasks)} raised too; the results "
                "of the chunks that did not were kept"
            )
        raise first
    return [r for n in range(len(tasks)) for r in by_chunk[n]]
