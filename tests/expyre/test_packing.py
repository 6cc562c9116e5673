"""Packed allocations on the local queue: K queue jobs run many chunks, each exactly once."""

import time
from pathlib import Path

import pytest
from expyre_testutil import counted_square, run_counts

from expyre import allocation
from expyre.func import ExPyRe
from expyre.localqueue import LocalQueue
from expyre.packing import allocation_ids, is_packed, start_packed
from expyre.poll import wait_for_jobs
from expyre.system import get_system

ONE_CORE = {"num_cores": 1, "max_time": "10m"}


def _chunks(log_dir, values, seconds=0.0):
    return [
        ExPyRe(
            f"pk_{x}", function=counted_square, args=[x, str(log_dir)], kwargs={"seconds": seconds}
        )
        for x in values
    ]


def _queue_jobs(job):
    system = get_system(job.system_name)
    return LocalQueue(system.scheduler.queue_dir).list()


def _wait_all(jobs, timeout=600):
    return {j.id: j for j in wait_for_jobs(jobs, timeout=timeout)}


def test_chunks_run_in_at_most_k_allocations_each_once_same_results(project, tmp_path):
    values = list(range(6))
    jobs = _chunks(tmp_path, values)
    ids = start_packed(jobs, ONE_CORE, max_allocations=2, partial_node=True)
    assert len(ids) == 2
    assert all(is_packed(j.remote_id) and allocation_ids(j.remote_id) == ids for j in jobs)
    finished = _wait_all(jobs)
    assert all(finished[j.id].status == "succeeded" for j in jobs)
    assert [j.get_results(timeout=0)[0] for j in jobs] == [x * x for x in values]
    assert len(_queue_jobs(jobs[0])) == 2  # two queue jobs for six chunks
    assert run_counts(tmp_path, values) == dict.fromkeys(values, 1)


def test_a_rerun_packs_nothing_already_submitted_or_done(project, tmp_path):
    values = [10, 11, 12]
    first = _chunks(tmp_path, values)
    assert len(start_packed(first, ONE_CORE, max_allocations=1, partial_node=True)) == 1
    # a second driver (same calls, same keys) while the first pack runs: nothing new queued
    again = _chunks(tmp_path, values)
    assert [j.id for j in again] == [j.id for j in first]
    assert start_packed(again, ONE_CORE, max_allocations=1, partial_node=True) == []
    _wait_all(again)
    assert start_packed(_chunks(tmp_path, values), ONE_CORE, 1, partial_node=True) == []
    assert len(_queue_jobs(first[0])) == 1
    assert run_counts(tmp_path, values) == dict.fromkeys(values, 1)


def test_allocation_killed_mid_chunk_claimed_chunk_dies_rest_come_back(project, tmp_path):
    values = [20, 21, 22, 23]
    jobs = _chunks(tmp_path, values, seconds=3.0)
    (alloc,) = start_packed(jobs, ONE_CORE, max_allocations=1, partial_node=True)
    first_dir = Path(jobs[0].row["remote_dir"])
    deadline = time.monotonic() + 300
    while not (tmp_path / "20.runs").exists():  # the first chunk is running its function
        assert time.monotonic() < deadline, "the allocation never ran its first chunk"
        time.sleep(0.1)
    assert (first_dir / allocation.CLAIM_DIR).is_dir()
    get_system(jobs[0].system_name).cancel([alloc])  # as scancel would
    outcome = _wait_all(jobs)
    assert outcome[jobs[0].id].status == "died"  # claimed, killed mid-chunk, no result
    back = [j for j in jobs if outcome[j.id].status == "created"]
    done = [j for j in jobs if outcome[j.id].status == "succeeded"]
    assert len(back) + len(done) == 3 and back  # the rest never ran, or finished first
    assert start_packed(back, ONE_CORE, max_allocations=2, partial_node=True)
    _wait_all(back)
    assert all(j.status == "succeeded" for j in back)
    # the killed chunk is rerun only when asked (as any killed job)
    start_packed([jobs[0]], ONE_CORE, max_allocations=1, partial_node=True, force_rerun=True)
    _wait_all([jobs[0]])
    assert [j.get_results(timeout=0)[0] for j in jobs] == [x * x for x in values]
    counts = run_counts(tmp_path, values)
    assert counts[20] == 2  # the killed run and the forced rerun
    assert all(counts[x] == 1 for x in values[1:])  # nothing else twice, nothing lost


def test_cancel_of_an_unclaimed_packed_chunk_keeps_it_from_running(project, tmp_path):
    values = [30, 31]
    jobs = _chunks(tmp_path, values, seconds=2.0)
    start_packed(jobs, ONE_CORE, max_allocations=1, partial_node=True)
    jobs[1].cancel()
    assert jobs[1].status == "died"
    _wait_all(jobs)
    assert jobs[0].status == "succeeded"
    assert run_counts(tmp_path, values) == {30: 1, 31: 0}


def test_bad_max_allocations_is_refused_clearly(project, tmp_path):
    with pytest.raises(ValueError, match="max_allocations=0 must be at least 1"):
        start_packed(_chunks(tmp_path, [1]), ONE_CORE, max_allocations=0)
    with pytest.raises(ValueError, match="whole number"):
        start_packed(_chunks(tmp_path, [1]), ONE_CORE, max_allocations="2")


def test_a_job_array_on_the_local_queue_is_refused_clearly(project, tmp_path):
    with pytest.raises(ValueError, match="job_array=True on system 'local'.*job_array=False"):
        start_packed(_chunks(tmp_path, [1, 2]), ONE_CORE, 2, partial_node=True, job_array=True)


def test_a_finished_packed_chunk_wakes_the_waiting_driver(project, tmp_path):
    """With an hour between polls, a chunk is yielded while its allocation runs the next one."""
    import threading

    quick = ExPyRe("pk_quick", function=counted_square, args=[70, str(tmp_path)])
    slow = ExPyRe(
        "pk_slow", function=counted_square, args=[71, str(tmp_path)], kwargs={"seconds": 20.0}
    )
    jobs = [quick, slow]
    start_packed(jobs, ONE_CORE, max_allocations=1, partial_node=True)
    seen = []

    def wait():
        for job in wait_for_jobs(jobs, timeout=7200, check_interval=3600):
            # was the other chunk still unfinished when this one was yielded?
            other = slow if job is quick else quick
            other_done = (Path(other.row["remote_dir"]) / allocation.DONE_FILE).exists()
            seen.append((job.name, other_done))

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    waiter.join(timeout=300)  # without the wake-ups this would take an hour
    assert not waiter.is_alive(), "the driver was not woken by its finished chunks"
    assert seen[0] == ("pk_quick", False)  # yielded while the allocation still ran pk_slow
    assert [name for name, _ in seen] == ["pk_quick", "pk_slow"]


def test_plain_and_packed_jobs_share_one_status_query_per_poll(project, tmp_path, monkeypatch):
    from expyre.poll import refresh_jobs
    from expyre.system import System

    plain = _chunks(tmp_path, [80, 81], seconds=30.0)
    for job in plain:
        job.start(ONE_CORE, partial_node=True)
    packed = _chunks(tmp_path, [82, 83, 84], seconds=30.0)
    start_packed(packed, ONE_CORE, max_allocations=2, partial_node=True)
    calls = []
    original = System.queue_states
    monkeypatch.setattr(
        System, "queue_states", lambda self, ids: calls.append(ids) or original(self, ids)
    )
    refresh_jobs(plain + packed)
    assert len(calls) == 1  # one query for 2 plain jobs and 2 allocations of 3 chunks
    assert sorted(calls[0]) == sorted(
        [j.remote_id for j in plain] + allocation_ids(packed[0].remote_id)
    )
    for job in plain + packed:
        job.cancel()


def _pack_script(job):
    pack = job.row["info"]["pack"]
    return (Path(job._config.root) / "packs" / pack / "_expyre_job.sh").read_text()


def test_chunks_run_in_forked_children_a_crash_loses_only_its_own_chunk(project, tmp_path):
    from expyre_testutil import crash_or_square

    values = [3, -1, 4]
    jobs = [
        ExPyRe(f"pk_fork_{x}", function=crash_or_square, args=[x, str(tmp_path)]) for x in values
    ]
    start_packed(jobs, ONE_CORE, max_allocations=1, partial_node=True)
    assert "--in-process" in _pack_script(jobs[0])  # nothing around the chunks: forked
    outcome = _wait_all(jobs)
    assert [outcome[j.id].status for j in jobs] == ["succeeded", "died", "succeeded"]
    assert [jobs[0].get_results(timeout=0)[0], jobs[2].get_results(timeout=0)[0]] == [9, 16]
    assert run_counts(tmp_path, values) == dict.fromkeys(values, 1)
    # each chunk's own stdout, its own job id, its own process (not the allocation's)
    pids = set()
    for job, x in zip(jobs, values, strict=True):
        out = (Path(job.row["remote_dir"]) / allocation.STDOUT_FILE).read_text()
        line = next(li for li in out.splitlines() if li.startswith(f"chunk {x} "))
        assert f"job {job.id} " in line
        pids.add(line.split()[-1])
    assert len(pids) == 3
    assert (Path(jobs[1].row["remote_dir"]) / allocation.DONE_FILE).read_text() == "137\n"
    # killed on its own while its allocation went on: not a node failure (which a policy
    # would resubmit), but a job that ended without a result for no reason the queue knows
    crashed = outcome[jobs[1].id].row
    assert crashed["queue_state"] == "failed" and crashed["failure_category"] == "unknown"


def test_chunks_with_commands_around_them_run_their_own_job_scripts(project, tmp_path):
    jobs = [
        ExPyRe(
            f"pk_cmd_{x}",
            function=counted_square,
            args=[x, str(tmp_path)],
            pre_run_commands=[f"echo pre-{x} > pre.txt"],
        )
        for x in (5, 6)
    ]
    start_packed(jobs, ONE_CORE, max_allocations=1, partial_node=True)
    assert "--in-process" not in _pack_script(jobs[0])
    _wait_all(jobs)
    assert [j.get_results(timeout=0)[0] for j in jobs] == [25, 36]
    for job, x in zip(jobs, (5, 6), strict=True):
        assert (Path(job.row["remote_dir"]) / "pre.txt").read_text() == f"pre-{x}\n"


def test_a_forked_chunk_sees_its_env_vars_and_resources(project, tmp_path):
    from expyre_testutil import report_env

    names = ["GREETING", "EXPYRE_NUM_CORES", "EXPYRE_JOB_ID"]
    jobs = [
        ExPyRe(f"pk_env_{i}", function=report_env, args=[names], env_vars=["GREETING=hi there"])
        for i in range(2)
    ]
    start_packed(jobs, ONE_CORE, max_allocations=1, partial_node=True)
    assert "--in-process" in _pack_script(jobs[0])
    _wait_all(jobs)
    for job in jobs:
        env, listing = job.get_results(timeout=0)[0]
        assert env == {"GREETING": "hi there", "EXPYRE_NUM_CORES": "1", "EXPYRE_JOB_ID": job.id}
        assert "_expyre_call.pkl" in listing  # it ran in its own job dir
