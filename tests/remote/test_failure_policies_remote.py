"""Failure categories and policies on the real queues of this machine.

- A chunk that runs over its time limit is categorised ``timeout`` and resubmitted with twice
  the time, then completes (Slurm, whose shortest limit is one minute; Grid Engine ``h_rt``;
  the local queue).
- A job cancelled behind expyre's back (``scancel``, ``qdel``) is ``cancelled`` and, by
  default, reported rather than resubmitted; with the policy ``split`` (Slurm) its chunk runs
  again as two queue jobs of half the items each.
- Memory: Grid Engine enforces ``h_vmem`` here (an address-space limit: Python raises
  MemoryError), so a chunk over its request is ``out_of_memory`` and resubmitted with twice
  the memory. This machine's Slurm cannot enforce memory: it runs without cgroups
  (``proctrack/linuxproc``, ``task/none``) and with ``jobacct_gather/none``, and memory is not
  a consumable resource (``CR_Core``); enabling ``OverMemoryKill`` would need a jobacct
  plugin and ``CR_Core_Memory``, under which every job without ``--mem`` holds the node's
  whole memory and jobs of concurrent users would run one at a time. Slurm's out-of-memory
  categorisation is covered by the table tests on accounting output (tests/expyre/test_failure.py).

Systems reached over ssh are skipped when the same scheduler runs here: they would test the
queue again, not the ssh path.
"""

import threading
import time

import pytest
from ase.build import bulk
from remote_jobs import allocate_then_mark, mark_then_sleep, sleep_then_mark

from expyre.func import jobs_db
from expyre.system import get_system
from wfl.autoparallelize.remote import QueuedJobsFailed
from wfl.configset import ConfigSet, OutputSpec
from wfl.map import map as wfl_map

pytestmark = pytest.mark.remote

# (time limit, s; time the item needs, s): over the limit, but within twice the limit. Slurm
# enforces limits in whole minutes and checks them about every 30 s.
TIME_LIMITS = {"slurm": (60, 100), "sge": (20, 30), "local": (10, 13)}


def _skip_unless_here(sys_config, selected_systems, schedulers):
    scheduler = sys_config["scheduler"]
    if scheduler not in schedulers:
        pytest.skip(f"not applicable: this test does not cover {scheduler}")
    covered = sys_config.get("host") and any(
        not other.get("host") and other["scheduler"] == scheduler
        for other in selected_systems.values()
    )
    if covered:
        pytest.skip(f"not applicable: {scheduler} is tested on this machine in this run")
    return scheduler


def _info(sys_name, job_name, resources, **extra):
    return {
        "sys_name": sys_name,
        "job_name": job_name,
        "resources": resources,
        "partial_node": True,
        "num_inputs_per_queued_job": 1,
        "env_vars": ["WFL_NUM_PYTHON_SUBPROCESSES=0", "OMP_NUM_THREADS=1"],
        "timeout": 1200,
        **extra,
    }


def test_time_limit_exceeded_is_resubmitted_with_more_time_and_completes(
    remote_project, sys_name, sys_config, selected_systems, capsys
):
    scheduler = _skip_unless_here(sys_config, selected_systems, TIME_LIMITS)
    limit, needed = TIME_LIMITS[scheduler]
    info = _info(sys_name, "slow", {"num_cores": 1, "max_time": limit})
    out = wfl_map(
        ConfigSet([bulk("Cu", cubic=True)]), OutputSpec(), sleep_then_mark, args=(needed,),
        autopara_info={"remote_info": info},
    )  # fmt: skip
    assert [at.info["slept"] for at in out] == [needed]
    err = capsys.readouterr().err
    assert f"timeout; resubmitting with max_time 00:{limit // 60:02d}:{limit % 60:02d} -> " in err
    (row,) = jobs_db().select()
    assert row["n_submissions"] == 2 and row["status"] == "processed"
    assert row["info"]["resources"]["max_time"] == 2 * limit
    assert [a["failure_category"] for a in row["info"]["attempts"]] == ["timeout"]
    reasons = [h["reason"] or "" for h in jobs_db().history(row["id"])]
    assert any(r.startswith("timeout:") for r in reasons), reasons
    assert any("resubmitting with max_time" in r for r in reasons), reasons


def test_memory_limit_exceeded_is_resubmitted_with_more_memory(
    remote_project, sys_name, sys_config, selected_systems, capsys
):
    """Grid Engine only (see the module docstring for why not Slurm here). The request
    reaches SGE through the header template ``{max_mem_kB}``, as a site's config would."""
    _skip_unless_here(sys_config, selected_systems, {"sge"})
    # ~230 MB of address space for python + numpy + ase, then 700 MB at once: over 600 MB,
    # within twice that
    info = _info(
        sys_name, "hungry", {"num_cores": 1, "max_time": "10m", "max_mem_tot": "600MB"},
        header_extra=["#$ -l h_vmem={max_mem_kB}K"],
    )  # fmt: skip
    out = wfl_map(
        ConfigSet([bulk("Cu", cubic=True)]), OutputSpec(), allocate_then_mark, args=(700,),
        autopara_info={"remote_info": info},
    )  # fmt: skip
    assert [at.info["allocated_MB"] for at in out] == [700]
    assert "out_of_memory; resubmitting with memory 600 MB -> 1200 MB" in capsys.readouterr().err
    (row,) = jobs_db().select()
    assert row["n_submissions"] == 2
    assert [a["failure_category"] for a in row["info"]["attempts"]] == ["out_of_memory"]


def test_cancelled_job_is_categorised_and_not_resubmitted(
    remote_project, sys_name, sys_config, selected_systems, capsys
):
    _skip_unless_here(sys_config, selected_systems, {"slurm", "sge", "local"})
    info = _info(sys_name, "victim", {"num_cores": 1, "max_time": "10m"})
    cancelled = []

    def cancel_when_running():
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not cancelled:
            for row in jobs_db().select(statuses=["started"]):
                get_system(sys_name).cancel([row["remote_id"]])  # scancel/qdel behind our back
                cancelled.append(row["id"])
            time.sleep(0.5)

    canceller = threading.Thread(target=cancel_when_running, daemon=True)
    canceller.start()
    with pytest.raises(QueuedJobsFailed) as caught:
        wfl_map(
            ConfigSet([bulk("Cu", cubic=True)]), OutputSpec(), sleep_then_mark, args=(600,),
            autopara_info={"remote_info": info},
        )  # fmt: skip
    canceller.join(timeout=60)
    assert cancelled, "the job never started"
    text = str(caught.value)
    assert text.startswith("1 of 1 queued job(s) failed (cancelled)")
    assert "remedy: it was cancelled on purpose" in text
    (row,) = jobs_db().select()
    assert row["failure_category"] == "cancelled" and row["n_submissions"] == 1
    assert "resubmitting" not in capsys.readouterr().err


def _cancel_first_started(sys_name, cancelled, ready, timeout=300):
    """scancel/qdel (behind expyre's back) the first job seen running, once ``ready`` exists."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not cancelled:
        for row in jobs_db().select(statuses=["started"]) if ready.exists() else []:
            get_system(sys_name).cancel([row["remote_id"]])
            cancelled.append(row["id"])
            break
        time.sleep(0.5)


def test_split_policy_on_slurm_runs_the_chunk_as_two_queue_jobs(
    remote_project, sys_name, sys_config, selected_systems, tmp_path, capsys
):
    """``split`` live on Slurm. The chunk is ended by ``scancel`` rather than by its time
    limit: Slurm's shortest limit is a minute, and the time-limit path is covered above."""
    _skip_unless_here(sys_config, selected_systems, {"slurm"})
    configs = [bulk("Cu", cubic=True) for _ in range(2)]
    for i, at in enumerate(configs):
        at.info["id"] = i
    info = _info(
        sys_name, "halved", {"num_cores": 1, "max_time": "10m"}, num_inputs_per_queued_job=2,
        failure_policies={"cancelled": "split"},
    )  # fmt: skip
    cancelled = []
    # cancelled once its first item runs (the marker written): the halves then run at once
    canceller = threading.Thread(
        target=_cancel_first_started, args=(sys_name, cancelled, tmp_path / "first_run")
    )
    canceller.start()
    out = wfl_map(
        ConfigSet(configs), OutputSpec(), mark_then_sleep, args=(str(tmp_path), 600),
        autopara_info={"remote_info": info},
    )  # fmt: skip
    canceller.join(timeout=60)
    assert len(cancelled) == 1
    assert [at.info["id"] for at in out] == [0, 1]
    err = capsys.readouterr().err
    assert "cancelled; splitting its 2 items into two jobs of 1 and 1" in err
    rows = {r["name"]: r for r in jobs_db().select()}
    assert sorted(rows) == ["halved_chunk_0", "halved_chunk_0_a", "halved_chunk_0_b"]
    whole, halves = rows["halved_chunk_0"], [rows["halved_chunk_0_a"], rows["halved_chunk_0_b"]]
    assert whole["failure_category"] == "cancelled" and whole["status"] == "died"
    # each half was a Slurm job of its own, and each item ran in its half's job
    assert all(h["status"] == "processed" and h["n_submissions"] == 1 for h in halves)
    assert [at.info["ran_on"] for at in out] == [h["remote_id"] for h in halves]
    (decision,) = whole["info"]["attempts"]
    assert decision["failure_category"] == "cancelled" and "splitting" in decision["reason"]
