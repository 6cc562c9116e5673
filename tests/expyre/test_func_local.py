"""End to end on the embedded local queue: ExPyRe, the runner, polling, died detection."""

import os
import shlex
import signal
import sys
import time
from pathlib import Path

import pytest
from expyre_testutil import (
    fail_with,
    local_system,
    report_env,
    sleep_then,
    square,
    write_config,
    write_output,
)

from expyre.func import ExPyRe, RemoteJobError, jobs_db
from expyre.localqueue import LocalQueue
from expyre.poll import wait_for_jobs
from expyre.system import System

ONE_CORE = {"num_cores": 1, "max_time": "10m"}


def _n_local_queue_jobs(root, system="local"):
    return len(LocalQueue(Path(root) / "localqueue" / system).list())


def test_twenty_jobs_succeed_with_one_status_call_per_poll(project, monkeypatch):
    status_calls = []
    real_run = System.run

    def counting_run(self, argv, **kw):  # a spy: the real command still runs
        if "status" in argv:
            status_calls.append(argv)
        return real_run(self, argv, **kw)

    monkeypatch.setattr(System, "run", counting_run)
    jobs = [ExPyRe(f"sq{i}", function=square, args=[i]) for i in range(20)]
    for job in jobs:
        job.start(ONE_CORE, partial_node=True)
    polls = []
    done = list(wait_for_jobs(jobs, timeout=600, on_progress=lambda c, e: polls.append(c)))
    assert sorted(j.id for j in done) == sorted(j.id for j in jobs)
    assert {j.id: j.get_results(timeout=0)[0] for j in done} == {
        j.id: i * i for i, j in enumerate(jobs)
    }
    assert len(status_calls) == len(polls)  # one query per poll, however many jobs
    assert polls[-1]["succeeded"] == 20 and sum(polls[-1].values()) == 20
    assert sum(r["n_submissions"] for r in jobs_db().select()) == 20
    assert _n_local_queue_jobs(project) == 20


def test_remote_exception_reraised_with_remote_traceback(project):
    job = ExPyRe("boom", function=fail_with, args=["kaboom 42"])
    job.start(ONE_CORE, partial_node=True)
    with pytest.raises(RemoteJobError) as info:
        job.get_results(timeout=300)
    err = info.value
    assert isinstance(err, RuntimeError)
    assert err.job_id == job.id and err.job_name == "boom"
    assert err.remote_exception_repr == "ValueError('kaboom 42')"
    assert "fail_with" in err.remote_traceback and "ValueError: kaboom 42" in err.remote_traceback
    assert isinstance(err.remote_exception, ValueError)
    assert str(job.stage_dir) in str(err) and "fail_with" in str(err)
    assert job.status == "failed"
    # waiting again raises the same way, immediately
    with pytest.raises(RemoteJobError, match="kaboom 42"):
        job.get_results(timeout=0)


def test_same_call_reuses_job_and_never_resubmits(project):
    first = ExPyRe("sq", function=square, args=[7]).start(ONE_CORE, partial_node=True)
    assert first.get_results(timeout=300)[0] == 49
    again = ExPyRe("sq", function=square, args=[7])
    assert again.id == first.id and again.status == "succeeded"
    again.start(ONE_CORE, partial_node=True)
    assert again.get_results(timeout=0)[0] == 49
    other = ExPyRe("sq", function=square, args=[8])
    assert other.id != first.id
    assert jobs_db().get(first.id)["n_submissions"] == 1
    fresh = ExPyRe("sq", function=square, args=[7], try_restart_from_prev=False)
    assert fresh.id != first.id and fresh.status == "created"


def test_force_rerun_submits_again(project):
    job = ExPyRe("sq", function=square, args=[3]).start(ONE_CORE, partial_node=True)
    job.get_results(timeout=300)
    job.start(ONE_CORE, partial_node=True, force_rerun=True)
    assert job.get_results(timeout=300)[0] == 9
    assert jobs_db().get(job.id)["n_submissions"] == 2


def _wait_for_file(directory, pattern, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = list(Path(directory).glob(pattern))
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"no {pattern} in {directory} after {timeout} s")


def test_kill_minus_9_of_job_process_is_died(project, tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    job = ExPyRe("victim", function=sleep_then, args=[120, 1, str(log)])
    job.start(ONE_CORE, partial_node=True)
    pid = int(_wait_for_file(log, "*.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    with pytest.raises(RemoteJobError) as info:
        job.get_results(timeout=300)
    assert job.status == "died"
    assert info.value.remote_exception_repr is None
    assert info.value.queue_state == "failed"
    assert "died without a result" in str(info.value)


def test_time_limit_kills_job_as_timeout(project):
    job = ExPyRe("slow", function=sleep_then, args=[120, 1])
    job.start({"num_cores": 1, "max_time": 2}, partial_node=True)
    with pytest.raises(RemoteJobError) as info:
        job.get_results(timeout=300)
    assert job.status == "died" and info.value.queue_state == "timeout"


def test_cancel_kills_running_job(project, tmp_path):
    log = tmp_path / "log"
    log.mkdir()
    job = ExPyRe("cancelme", function=sleep_then, args=[120, 1, str(log)])
    job.start(ONE_CORE, partial_node=True)
    pid = int(_wait_for_file(log, "*.pid").read_text())
    job.cancel()
    assert job.status == "died" and job.row["queue_state"] == "cancelled"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("cancelled job's process still alive")
    with pytest.raises(RemoteJobError, match="cancelled"):
        job.get_results(timeout=0)


def _max_overlap(spans):
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


@pytest.mark.parametrize(("cores_per_job", "limit"), [(1, 2), (2, 1)])
def test_never_more_cores_than_the_partition_declares(project, tmp_path, cores_per_job, limit):
    write_config(project, {"two": local_system(num_cores=2)})
    log = tmp_path / "log"
    log.mkdir()
    jobs = [
        ExPyRe(f"span{i}", function=sleep_then, args=[1.0, i, str(log)]).start(
            {"num_cores": cores_per_job, "max_time": "10m"}, partial_node=True
        )
        for i in range(5)
    ]
    assert len(list(wait_for_jobs(jobs, timeout=600))) == 5
    spans = [tuple(map(float, p.read_text().split())) for p in log.glob("*.span")]
    assert len(spans) == 5
    assert _max_overlap(spans) <= limit


def test_env_vars_files_and_commands(project, monkeypatch):
    write_config(
        project,
        {
            "two": local_system(
                num_cores=2,
                commands=["export FROM_CONFIG=yes"],
                pre_submit_cmds=["export SUBMIT_MARK=pre-submit"],
            )
        },
    )
    monkeypatch.setenv("COPIED", "it's $(touch pwned) `x`")
    Path("inputs").mkdir()
    Path("inputs/a.txt").write_text("A")
    Path("single.txt").write_text("S")
    names = [
        "NCORE",
        "COPIED",
        "FROM_CONFIG",
        "PRE",
        "EXPYRE_NUM_NODES",
        "EXPYRE_NUM_CORES",
        "EXPYRE_NUM_CORES_PER_NODE",
        "EXPYRE_NCORES_PER_NODE",
        "SUBMIT_MARK",
    ]
    job = ExPyRe(
        "env",
        function=report_env,
        args=[names],
        input_files=["inputs", "single.txt"],
        env_vars=["NCORE=${EXPYRE_NUM_CORES_PER_NODE}", "COPIED"],
        pre_run_commands=["export PRE=before"],
        post_run_commands=["echo after-the-run"],
    )
    job.start({"num_nodes": 1, "max_time": "10m"})
    (env, listing), stdout, _ = job.get_results(timeout=300)
    assert env["NCORE"] == "2" and env["EXPYRE_NCORES_PER_NODE"] == "2"
    assert env["EXPYRE_NUM_NODES"] == "1" and env["EXPYRE_NUM_CORES"] == "2"
    assert env["COPIED"] == "it's $(touch pwned) `x`"  # copied verbatim, never executed
    assert env["FROM_CONFIG"] == "yes" and env["PRE"] == "before"
    assert env["SUBMIT_MARK"] == "pre-submit"  # the local queue passes the submit environment on
    assert {"inputs", "single.txt"} <= set(listing)
    assert (job.stage_dir / "inputs" / "a.txt").read_text() == "A"
    assert "after-the-run" in stdout
    assert not (job.stage_dir / "pwned").exists()


def test_local_queue_runs_the_systems_commands_before_its_own_python(project, tmp_path):
    """A system whose python only exists once its ``commands`` ran (a venv to activate, a
    module to load): the local queue's own commands (submit, status, cancel) are Python
    too, so they must run after ``commands`` as the job does, or nothing can be queued."""
    bin_dir = tmp_path / "venv-bin"
    bin_dir.mkdir()
    (bin_dir / "jobpython").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} "$@"\n')
    (bin_dir / "jobpython").chmod(0o755)
    system = local_system(
        num_cores=1,
        commands=[
            f"export PATH={shlex.quote(str(bin_dir))}:$PATH",
            "export SET_BY_COMMANDS=activated",
            "echo noise-on-stdout",  # must not be mistaken for the queue's answer
        ],
    )
    system["python_cmd"] = "jobpython"  # not on PATH until commands ran
    write_config(project, {"venvsys": system})
    job = ExPyRe("activate", function=report_env, args=[["SET_BY_COMMANDS"]])
    job.start(ONE_CORE, partial_node=True)
    (env, _), _, _ = job.get_results(timeout=300)
    assert env == {"SET_BY_COMMANDS": "activated"}
    assert job.status == "succeeded"


def test_output_files_are_copied_back(project):
    job = ExPyRe(
        "out", function=write_output, args=["result.txt", "hello"], output_files=["result*.txt"]
    )
    job.start(ONE_CORE, partial_node=True)
    assert job.get_results(timeout=300)[0] == "ok"
    assert Path("result.txt").read_text() == "hello"


def test_no_partition_fits_is_a_clear_error(project):
    job = ExPyRe("big", function=square, args=[1])
    with pytest.raises(ValueError, match="less than one node"):
        job.start({"num_cores": 1, "max_time": "1h"})  # partial_node False
    assert job.status == "created"  # nothing was submitted


def test_clean_and_mark_processed(project):
    Path("in.txt").write_text("x")
    job = ExPyRe("c", function=square, args=[5], input_files=["in.txt"]).start(
        ONE_CORE, partial_node=True
    )
    assert job.get_results(timeout=300)[0] == 25
    job.mark_processed()
    assert job.status == "processed"
    job.clean()
    assert not (job.stage_dir / "in.txt").exists()
    assert job.get_results(timeout=0)[0] == 25  # results survive a plain clean
    job.clean(wipe=True)
    assert job.status == "cleaned" and not job.stage_dir.exists()


def test_function_not_importable_in_the_job_gives_a_hint(project, tmp_path, monkeypatch):
    moddir = tmp_path / "gone"
    moddir.mkdir()
    (moddir / "vanishing_mod.py").write_text("def f(x):\n    return x\n")
    monkeypatch.syspath_prepend(str(moddir))
    import vanishing_mod

    job = ExPyRe("gone", function=vanishing_mod.f, args=[1])
    (moddir / "vanishing_mod.py").unlink()  # the job cannot import it any more
    job.start(ONE_CORE, partial_node=True)
    with pytest.raises(RemoteJobError, match="could not load its pickled call") as info:
        job.get_results(timeout=300)
    assert "vanishing_mod" in info.value.remote_exception_repr


def test_separate_rundir_is_staged_in_and_out(project, tmp_path):
    rundir = tmp_path / "scratch"
    write_config(project, {"two": local_system(num_cores=2, rundir=str(rundir))})
    Path("in.txt").write_text("data")
    job = ExPyRe(
        "far", function=write_output, args=["made.txt", "far away"], input_files=["in.txt"]
    )
    job.start(ONE_CORE, partial_node=True)
    job_dir = rundir / job._db.project_id / job.id  # per project: a copy never shares it
    assert job.row["remote_dir"] == str(job_dir) and (job_dir / "in.txt").read_text() == "data"
    assert job.get_results(timeout=300)[0] == "ok"
    assert (job.stage_dir / "made.txt").read_text() == "far away"  # copied back
    job.clean()
    assert not job_dir.exists() and job.get_results(timeout=0)[0] == "ok"
