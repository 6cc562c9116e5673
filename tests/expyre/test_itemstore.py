"""The item store (``_expyre/items.db``): lookups, first writer wins, claims, dropping."""

import multiprocessing
import time

import pytest

from expyre.itemstore import ItemStore, StoredItem


def _item(key, value=b"v", op="m:op", args="a1", code="c1", job="j1"):
    return StoredItem(key, op, args, code, value, job)


@pytest.fixture
def store(tmp_path):
    return ItemStore(tmp_path / "items.db")


def test_a_store_that_does_not_exist_finds_nothing_and_creates_nothing(tmp_path):
    store = ItemStore(tmp_path / "items.db")
    assert store.lookup(["k"]) == {} and store.claiming_jobs(["k"]) == {}
    assert store.summary() == [] and store.runs() == [] and store.drop(operation=".") == 0
    assert not (tmp_path / "items.db").exists()


def test_lookup_returns_stored_values_and_the_first_writer_wins(store):
    assert store.put([_item("k1", b"one"), _item("k2", b"two")]) == 2
    assert store.put([_item("k1", b"other"), _item("k3", b"three")]) == 1
    assert store.lookup(["k1", "k2", "k3", "nope"]) == {"k1": b"one", "k2": b"two", "k3": b"three"}


def test_lookup_of_many_keys_in_batches(store):
    store.put([_item(f"k{i}", str(i).encode()) for i in range(2500)])
    found = store.lookup([f"k{i}" for i in range(3000)])
    assert len(found) == 2500 and found["k2499"] == b"2499"


def test_claims_say_which_job_computes_which_item_in_order(store):
    store.claim("job_a", ["k2", "k1"])
    store.claim("job_a", ["k2", "k1"])  # the same job created again: nothing changes
    store.claim("job_b", ["k1"])
    assert store.claimed_keys("job_a") == ["k2", "k1"]
    assert {k: sorted(v) for k, v in store.claiming_jobs(["k1", "k2", "k9"]).items()} == {
        "k1": ["job_a", "job_b"],
        "k2": ["job_a"],
    }


def test_drop_by_operation_age_and_job_takes_the_claims_along(store):
    store.put([_item("a1", op="wfl.map:map", job="ja"), _item("b1", op="mine:relax", job="jb")])
    store.claim("ja", ["a1"])
    store.claim("jb", ["b1"])
    assert store.drop(operation="relax", dry_run=True) == 1
    assert store.lookup(["b1"]) == {"b1": b"v"}  # a dry run changes nothing
    assert store.drop(older_than_s=3600) == 0  # both are new
    assert store.drop(operation="relax") == 1
    assert store.lookup(["a1", "b1"]) == {"a1": b"v"}
    assert store.claiming_jobs(["b1"]) == {}  # a dropped item is computed again, not re-read
    time.sleep(0.05)
    assert store.drop(older_than_s=0.01) == 1
    assert store.lookup(["a1"]) == {}


def test_drop_by_job_ids_forgets_their_claims(store):
    store.put([_item("a", job="j1"), _item("b", job="j2")])
    store.claim("j1", ["a"])
    assert store.drop(job_ids=["j1"]) == 1
    assert store.lookup(["a", "b"]) == {"b": b"v"} and store.claimed_keys("j1") == []


def test_drop_stale_removes_items_of_the_same_call_made_by_other_code(store):
    store.put([_item("old", code="c1"), _item("new", code="c2"), _item("x", args="a2", code="c1")])
    assert store.drop_stale("m:op", "a1", "c2") == 1
    assert sorted(store.lookup(["old", "new", "x"])) == ["new", "x"]


def test_summary_and_runs(store):
    store.put([_item("a", b"12345"), _item("b", b"1", code="c2")])
    store.record_run("m:op", "relax", 10, 7, 1, 2)
    rows = store.summary()
    assert [(r["operation"], r["code"], r["n_items"], r["nbytes"]) for r in rows] == [
        ("m:op", "c1", 1, 5),
        ("m:op", "c2", 1, 1),
    ]
    (run,) = store.runs()
    assert (run["n_items"], run["n_reused"], run["n_running"], run["n_new"]) == (10, 7, 1, 2)


def _writer(path, start, n):
    store = ItemStore(path)
    for i in range(start, start + n):
        store.put([_item(f"k{i % 150}", f"{start}".encode())])


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "items.db"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, s, 100)) for s in (0, 100)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    found = ItemStore(path).lookup([f"k{i}" for i in range(150)])
    assert len(found) == 150  # every key once, whoever wrote it first


def _hold_planning(path, held):
    with ItemStore(path).planning():
        held.set()
        time.sleep(600)  # until killed


def test_the_planning_lock_is_exclusive_and_freed_when_its_holder_is_killed(tmp_path):
    import threading

    ctx = multiprocessing.get_context("spawn")
    held = ctx.Event()
    holder = ctx.Process(target=_hold_planning, args=(tmp_path / "items.db", held))
    holder.start()
    try:
        assert held.wait(120), "the holder never took the lock"
        got = threading.Event()

        def take():
            with ItemStore(tmp_path / "items.db").planning():
                got.set()

        taker = threading.Thread(target=take, daemon=True)
        taker.start()
        assert not got.wait(1.0), "two holders of the planning lock at once"
        holder.kill()  # SIGKILL: no cleanup runs in the holder
        assert got.wait(120), "the lock of a killed holder was not freed"
    finally:
        holder.kill()
        holder.join(60)
