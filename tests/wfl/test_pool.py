"""run_items: order, chunking, pool vs serial, initializer, env var, thread limits."""

import os

import numpy as np
import pytest

from wfl.autoparallelize import pool
from wfl.autoparallelize.pool import resolve_num_subprocesses, run_items

INIT_VALUE = {"value": None}


def _set_init(value):
    INIT_VALUE["value"] = value


def _tag(items, label, rng=None):
    out = []
    for i, item in enumerate(items):
        draw = None if rng is None else float(rng[i].random())
        out.append(
            {
                "item": item,
                "label": label,
                "pid": os.getpid(),
                "chunk": len(items),
                "init": INIT_VALUE["value"],
                "draw": draw,
            }
        )
    return out


def _blas_threads(items):
    from threadpoolctl import threadpool_info

    return [max((p["num_threads"] for p in threadpool_info()), default=1) for _ in items]


def _wrong_length(items):
    return items[:-1]


def _run(items, n, chunk, **kw):
    kw.setdefault("initializer", None)
    kw.setdefault("item_rngs", None)
    return run_items(
        _tag,
        items,
        ["L"],
        {},
        num_python_subprocesses=n,
        num_inputs_per_python_subprocess=chunk,
        **kw,
    )


@pytest.mark.parametrize("n, chunk", [(0, 1), (0, 3), (1, 2), (2, 1), (2, 3), (4, 7)])
def test_one_result_per_item_in_input_order(n, chunk):
    items = list(range(10))
    results = _run(items, n, chunk)
    assert [r["item"] for r in results] == items
    assert all(r["label"] == "L" for r in results)
    assert max(r["chunk"] for r in results) == min(chunk, 10)
    parent_pid = os.getpid()
    assert all((r["pid"] == parent_pid) == (n == 0) for r in results)


def test_initializer_runs_serially_and_in_every_worker():
    INIT_VALUE["value"] = None
    assert {r["init"] for r in _run(list(range(4)), 0, 1, initializer=(_set_init, [5]))} == {5}
    INIT_VALUE["value"] = None
    assert {r["init"] for r in _run(list(range(4)), 2, 1, initializer=(_set_init, [6]))} == {6}


def test_item_rngs_follow_their_items_for_any_split():
    # each item must draw from its own child generator: compared with the draws of those very
    # children, so a run that dropped the generators (all None) or handed a chunk the wrong
    # children fails, not only a run whose draws differ between splits
    expected = [float(g.random()) for g in np.random.default_rng(3).spawn(7)]
    assert len(set(expected)) == 7
    for n, chunk in [(0, 1), (2, 3), (0, 7), (2, 2)]:
        rngs = np.random.default_rng(3).spawn(7)
        results = _run(list(range(7)), n, chunk, item_rngs=rngs)
        assert [r["draw"] for r in results] == expected, (n, chunk)


def test_env_var_sets_pool_size(monkeypatch):
    monkeypatch.setenv("WFL_NUM_PYTHON_SUBPROCESSES", "2")
    results = _run(list(range(4)), None, 1)
    assert all(r["pid"] != os.getpid() for r in results)
    monkeypatch.setenv("WFL_NUM_PYTHON_SUBPROCESSES", "two")
    with pytest.raises(ValueError, match="WFL_NUM_PYTHON_SUBPROCESSES='two'"):
        resolve_num_subprocesses(None)
    monkeypatch.delenv("WFL_NUM_PYTHON_SUBPROCESSES")
    assert resolve_num_subprocesses(None) == 0


def test_wrong_number_of_results_is_clear_error():
    with pytest.raises(RuntimeError, match="returned 1 results for 2 items"):
        run_items(
            _wrong_length,
            [1, 2],
            [],
            {},
            num_python_subprocesses=0,
            num_inputs_per_python_subprocess=2,
            initializer=None,
            item_rngs=None,
        )


def test_workers_limit_blas_threads(monkeypatch):
    for var in pool._THREAD_ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    n_workers = 2
    threads = run_items(
        _blas_threads,
        list(range(4)),
        [],
        {},
        num_python_subprocesses=n_workers,
        num_inputs_per_python_subprocess=1,
        initializer=None,
        item_rngs=None,
    )
    assert max(threads) <= max(1, pool.available_cores() // n_workers)


def test_user_thread_setting_is_respected(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert pool._limit_threads(2) is None


def test_iterable_arg_by_position_and_name():
    def op(label, items):
        return [f"{label}{i}" for i in items]

    kw = dict(
        num_python_subprocesses=0,
        num_inputs_per_python_subprocess=2,
        initializer=None,
        item_rngs=None,
    )
    assert run_items(op, [1, 2, 3], ["x"], {}, iterable_arg=1, **kw) == ["x1", "x2", "x3"]
    assert run_items(op, [1, 2], [], {"label": "y"}, iterable_arg="items", **kw) == ["y1", "y2"]
