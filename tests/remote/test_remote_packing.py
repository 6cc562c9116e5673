"""Packed allocations on the real queues (Slurm, SGE, Slurm over ssh): claims, kills, reruns.

The chunks count their own runs in a directory of this machine (the ssh system is this
machine too), so "nothing twice, nothing lost" is checked from the outside.
"""

import posixpath
import time
from pathlib import Path

import pytest
from remote_jobs import counted_square

from expyre.func import ExPyRe
from expyre.packing import _pack_dirs, allocation_ids, start_packed
from expyre.poll import wait_for_jobs
from expyre.system import System, get_system

ONE_CORE = {"num_cores": 1, "max_time": "10m"}


def _chunks(log_dir, values, seconds=0.0):
    return [
        ExPyRe(
            f"rpk_{x}",
            function=counted_square,
            args=[x, str(log_dir)],
            kwargs={"seconds": seconds},
        )
        for x in values
    ]


def _runs(log_dir, values):
    out = {}
    for x in values:
        path = Path(log_dir, f"{x}.runs")
        out[x] = len(path.read_text().splitlines()) if path.exists() else 0
    return out


def _wait(jobs):
    return {j.id: j.status for j in wait_for_jobs(jobs, timeout=900)}


def test_packed_chunks_share_k_allocations_and_run_once(remote_project, sys_name, tmp_path):
    log_dir = tmp_path / "runs"
    log_dir.mkdir()
    values = list(range(5))
    jobs = _chunks(log_dir, values)
    ids = start_packed(jobs, ONE_CORE, max_allocations=2, system_name=sys_name, partial_node=True)
    assert len(ids) == 2 and all(allocation_ids(j.remote_id) == ids for j in jobs)
    assert set(_wait(jobs).values()) == {"succeeded"}
    assert [j.get_results(timeout=0)[0] for j in jobs] == [x * x for x in values]
    assert _runs(log_dir, values) == dict.fromkeys(values, 1)
    # a rerun (same calls, same keys) submits nothing
    again = _chunks(log_dir, values)
    assert start_packed(again, ONE_CORE, 2, system_name=sys_name, partial_node=True) == []


def test_allocation_cancelled_mid_chunk_then_rerun_nothing_twice_nothing_lost(
    remote_project, sys_name, tmp_path
):
    log_dir = tmp_path / "runs"
    log_dir.mkdir()
    values = [40, 41, 42]
    jobs = _chunks(log_dir, values, seconds=4.0)
    (alloc,) = start_packed(
        jobs, ONE_CORE, max_allocations=1, system_name=sys_name, partial_node=True
    )
    deadline = time.monotonic() + 600
    while not (log_dir / "40.runs").exists():  # the first chunk's function is running
        assert time.monotonic() < deadline, "the allocation never started its first chunk"
        time.sleep(0.2)
    get_system(sys_name).cancel([alloc])  # scancel / qdel of the allocation, mid-chunk
    outcome = _wait(jobs)
    assert outcome[jobs[0].id] == "died"
    back = [j for j in jobs if outcome[j.id] == "created"]
    assert all(outcome[j.id] in ("created", "succeeded") for j in jobs[1:])
    # the rerun: what never ran is packed again; the killed chunk is rerun when asked
    start_packed(back, ONE_CORE, max_allocations=1, system_name=sys_name, partial_node=True)
    start_packed([jobs[0]], ONE_CORE, 1, system_name=sys_name, partial_node=True, force_rerun=True)
    assert set(_wait(jobs).values()) == {"succeeded"}
    assert [j.get_results(timeout=0)[0] for j in jobs] == [x * x for x in values]
    runs = _runs(log_dir, values)
    assert runs[40] == 2 and runs[41] == 1 and runs[42] == 1


def test_job_array_one_submit_for_many_chunks_then_cancel_and_rerun(
    remote_project, sys_name, sys_config, tmp_path, monkeypatch
):
    if sys_config["scheduler"] == "local":
        pytest.skip(
            "not applicable: the local queue has no job arrays (refused clearly, see test_packing)"
        )
    log_dir = tmp_path / "runs"
    log_dir.mkdir()
    submits = []
    original = System.submit
    monkeypatch.setattr(System, "submit", lambda self, *a: submits.append(a) or original(self, *a))
    values = list(range(50, 56))
    jobs = _chunks(log_dir, values)
    ids = start_packed(
        jobs, ONE_CORE, max_allocations=6, system_name=sys_name, partial_node=True, job_array=True
    )
    assert len(ids) == 1 and len(submits) == 1  # one submit command, six array tasks
    assert set(_wait(jobs).values()) == {"succeeded"}
    assert _runs(log_dir, values) == dict.fromkeys(values, 1)
    # each task wrote its own log, naming the chunks it ran; together they name all six
    system = get_system(sys_name)
    _, pack_dir = _pack_dirs(
        system, jobs[0]._config.root, jobs[0].row["info"]["pack"], jobs[0]._db.project_id
    )
    listing = system.run(["ls", pack_dir], what="list the pack dir").stdout.split()
    task_logs = sorted(name for name in listing if name.startswith("_expyre_task_"))
    assert [n for n in task_logs if n.endswith(".stdout")], listing
    ran = []
    for name in task_logs:
        text = system.run(["cat", f"{pack_dir}/{name}"], what="read a task log").stdout
        ran += [line.split(" ran ")[1].split()[0] for line in text.splitlines() if " ran " in line]
    # the pack names its chunks relative to itself (the project stays movable)
    ran = [posixpath.normpath(path) for path in ran]
    assert sorted(ran) == sorted(j.row["remote_dir"] for j in jobs)

    # an array cancelled while its first task runs a chunk: that chunk died, the rest
    # never ran (or finished first); the rerun loses nothing and runs nothing twice
    slow_values = [60, 61, 62, 63]
    slow = _chunks(log_dir, slow_values, seconds=4.0)
    (array_id,) = start_packed(
        slow, ONE_CORE, max_allocations=2, system_name=sys_name, partial_node=True, job_array=True
    )
    deadline = time.monotonic() + 600
    while not any((log_dir / f"{x}.runs").exists() for x in slow_values):
        assert time.monotonic() < deadline, "no array task started a chunk"
        time.sleep(0.2)
    get_system(sys_name).cancel([array_id])
    outcome = _wait(slow)
    died = [j for j in slow if outcome[j.id] == "died"]
    back = [j for j in slow if outcome[j.id] == "created"]
    assert died and all(outcome[j.id] in ("died", "created", "succeeded") for j in slow)
    start_packed(back, ONE_CORE, 2, system_name=sys_name, partial_node=True, job_array=True)
    start_packed(died, ONE_CORE, 2, system_name=sys_name, partial_node=True, force_rerun=True)
    assert set(_wait(slow).values()) == {"succeeded"}
    assert [j.get_results(timeout=0)[0] for j in slow] == [x * x for x in slow_values]
    runs = _runs(log_dir, slow_values)
    died_values = {slow_values[slow.index(j)] for j in died}
    # a chunk that died ran again; its first run may have been killed after the claim but
    # before the function started (then the function ran once in all)
    assert all(runs[x] in ((1, 2) if x in died_values else (1,)) for x in slow_values), runs
