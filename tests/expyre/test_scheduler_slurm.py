"""Slurm backend: header, command lines and parsing.

The outputs below were recorded from Slurm 22.05 (Debian 12) started by ci/start-slurm.sh.
Tests marked ``remote`` run the built commands against that live Slurm.
"""

import os
import shutil
import subprocess
import time

import pytest

from expyre.schedulers import get_scheduler
from expyre.schedulers.base import JobRequest, QueueState
from expyre.schedulers.slurm import SlurmScheduler, slurm_state


def request(**over):
    fields = dict(
        job_name="relax_0123abcd",
        partition="standard",
        num_nodes=1,
        num_cores=2,
        num_cores_per_node=2,
        max_time_s=3600,
        max_mem_kB=None,
        stdout="/scratch/jobs/relax_0123abcd/job.stdout",
        stderr="/scratch/jobs/relax_0123abcd/job.stderr",
    )
    fields.update(over)
    return JobRequest(**fields)


def test_registry_builds_slurm_backend():
    sched = get_scheduler("slurm")
    assert isinstance(sched, SlurmScheduler)
    assert sched.directive == "#SBATCH"


def test_default_header_requests_what_selection_chose():
    lines = SlurmScheduler().default_header(request(num_nodes=2, num_cores=8, num_cores_per_node=4))
    assert lines == [
        "#SBATCH --job-name=relax_0123abcd",
        "#SBATCH --partition=standard",
        "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=4",
        "#SBATCH --time=01:00:00",
        "#SBATCH --output=/scratch/jobs/relax_0123abcd/job.stdout",
        "#SBATCH --error=/scratch/jobs/relax_0123abcd/job.stderr",
    ]


def test_header_time_memory_and_days():
    lines = SlurmScheduler().default_header(request(max_time_s=2 * 86400 + 30, max_mem_kB=4194304))
    assert "#SBATCH --time=2-00:00:30" in lines
    assert "#SBATCH --mem=4194304K" in lines
    # a sub-minute limit must not become 0 (= unlimited for Slurm)
    assert "#SBATCH --time=00:01:00" in SlurmScheduler().default_header(request(max_time_s=5))
    assert not any("--time" in x for x in SlurmScheduler().default_header(request(max_time_s=None)))


def test_header_makes_hostile_names_and_paths_inert():
    lines = SlurmScheduler().default_header(
        request(job_name="a b;$(rm -rf ~)'x", stdout="/s p/100%/out", stderr="/tmp/e")
    )
    assert lines[0] == "#SBATCH --job-name=a_b___rm_-rf____x"
    # spaces -> one double-quoted value; % doubled so Slurm does not expand %j-style patterns
    assert '#SBATCH --output="/s p/100%%/out"' in lines
    with pytest.raises(ValueError, match="stdout path.*cannot be written safely"):
        SlurmScheduler().default_header(request(stdout='/tmp/x"y/out'))
    with pytest.raises(ValueError, match=r"'\$'"):
        SlurmScheduler().default_header(request(stderr="/tmp/$(id)/err"))


def test_submit_command_and_job_id():
    sched = SlurmScheduler()
    assert sched.submit_command("/j/job.sh", "/j") == ["sbatch", "--parsable", "/j/job.sh"]
    assert sched.parse_submit_output("1234\n") == "1234"
    assert sched.parse_submit_output("1234;cluster2\n") == "1234"
    assert sched.parse_submit_output("Submitted batch job 99\n") == "99"
    with pytest.raises(ValueError, match="sbatch printed no job id"):
        sched.parse_submit_output("sbatch: error: Batch job submission failed\n")


def test_status_is_one_command_for_any_number_of_jobs_and_needs_no_user_variable():
    sched = SlurmScheduler()
    ids = [str(i) for i in range(1000, 1200)]
    argv = sched.status_command(ids)
    assert argv[0] == "squeue" and "--me" in argv
    assert not any("$" in a or "USER" in a for a in argv)
    assert sched.status_command(ids[:1]) == argv  # size of the job list does not matter
    with pytest.raises(ValueError, match="malformed"):
        sched.status_command(["12; rm -rf /"])


# recorded: squeue --me --noheader --states=all --format=%i|%T|%r
SQUEUE = """\
5|CANCELLED|JobHeldUser
7|COMPLETED|None
8|FAILED|NonZeroExitCode
6|PENDING|Resources
4|RUNNING|None
9|PENDING|JobHeldUser
10|PENDING|JobHeldAdmin
11|TIMEOUT|None
12|OUT_OF_MEMORY|None
13|NODE_FAIL|None
14|COMPLETING|None
15|SOMETHING_NEW|None
"""


def test_parse_status_maps_every_native_state():
    ids = [str(i) for i in range(4, 16)] + ["999"]
    states = SlurmScheduler().parse_status_output(SQUEUE, ids)
    assert states == {
        "4": QueueState.RUNNING,
        "5": QueueState.CANCELLED,  # cancelled while held: cancelled wins
        "6": QueueState.QUEUED,
        "7": QueueState.COMPLETED,
        "8": QueueState.FAILED,
        "9": QueueState.HELD,
        "10": QueueState.HELD,
        "11": QueueState.TIMEOUT,
        "12": QueueState.OUT_OF_MEMORY,
        "13": QueueState.NODE_FAIL,
        "14": QueueState.RUNNING,
        "15": QueueState.UNKNOWN,
    }  # "999" is not in the queue: absent, never guessed


def test_parse_status_ignores_other_jobs_of_the_user():
    assert SlurmScheduler().parse_status_output(SQUEUE, ["4"]) == {"4": QueueState.RUNNING}
    assert SlurmScheduler().parse_status_output("", ["4"]) == {}


def test_state_words_from_sacct():
    assert slurm_state("CANCELLED by 0") is QueueState.CANCELLED
    assert slurm_state("PENDING", "DependencyNeverSatisfied") is QueueState.HELD
    # preemption ends a job through no fault of its own: like a node failure, resubmit it
    assert slurm_state("PREEMPTED") is QueueState.NODE_FAIL


def test_find_by_name():
    sched = SlurmScheduler()
    out = "5|xpr_held\n7|relax_0123abcd\n8|relax_0123abcd_other\n"
    assert sched.parse_find_by_name_output(out, "relax_0123abcd") == {
        "relax_0123abcd": "7",
        "relax_0123abcd_other": "8",
    }
    assert "--me" in sched.find_by_name_command("relax")


def test_accounting_falls_back_to_jobcomp_log_and_never_fails():
    argv = SlurmScheduler().accounting_command(["4", "5"])
    assert argv[:2] == ["sh", "-c"]
    assert "sacct -c" in argv[2] and argv[2].rstrip().endswith("|| true")
    # recorded: sacct -c -X -n -P -o JobID,State,ExitCode -j ... (jobcomp/filetxt)
    out = (
        "7|COMPLETED|0:0\n8|FAILED|1:0\n5|CANCELLED|0:0\n4|CANCELLED|0:0\n1||0:0\n11|TIMEOUT|0:15\n"
    )
    states = SlurmScheduler().parse_accounting_output(out, ["1", "4", "7", "8", "11"])
    assert states == {
        "4": QueueState.CANCELLED,
        "7": QueueState.COMPLETED,
        "8": QueueState.FAILED,
        "11": QueueState.TIMEOUT,
    }


# ---------------------------------------------------------------- live Slurm (ci/start-slurm.sh)

needs_slurm = pytest.mark.skipif(shutil.which("sbatch") is None, reason="no Slurm client here")


def _run(argv, cwd=None):
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=True, timeout=60)


def _submit(tmp_path, name, body, extra_header=(), **over):
    sched = SlurmScheduler()
    header = sched.default_header(
        request(
            job_name=name,
            stdout=str(tmp_path / "out"),
            stderr=str(tmp_path / "err"),
            num_cores=1,
            num_cores_per_node=1,
            **over,
        )
    )
    script = tmp_path / "job.sh"
    script.write_text("\n".join(["#!/bin/bash", *header, *extra_header, body, ""]))
    proc = _run(sched.submit_command(str(script), str(tmp_path)), cwd=tmp_path)
    return sched.parse_submit_output(proc.stdout)


def _wait_state(job_id, wanted, timeout=120):
    sched = SlurmScheduler()
    state = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = _run(sched.status_command([job_id])).stdout
        state = sched.parse_status_output(out, [job_id]).get(job_id)
        if state in wanted:
            return state
        time.sleep(0.5)
    return state


@pytest.mark.remote
@needs_slurm
def test_live_submit_run_hold_cancel_partition(tmp_path, monkeypatch):
    monkeypatch.delenv("USER", raising=False)  # as on this machine: nothing may rely on it
    sched = SlurmScheduler()
    (tmp_path / "ok").mkdir()
    ok = _submit(tmp_path / "ok", "xprtest ok;$(touch PWNED)", "echo hello $SLURM_JOB_PARTITION")
    assert _wait_state(ok, {QueueState.COMPLETED}) is QueueState.COMPLETED
    assert (tmp_path / "ok" / "out").read_text().strip() == "hello standard"
    assert not (tmp_path / "ok" / "PWNED").exists()

    (tmp_path / "held").mkdir()
    # held from its submission: a hold placed afterwards can come too late when the node is
    # free (other tests run at the same time), and the job is already running
    held = _submit(
        tmp_path / "held", "xprtest_held", "sleep 300", ["#SBATCH --hold"], partition="debug"
    )
    assert _wait_state(held, {QueueState.HELD}) is QueueState.HELD
    found = sched.parse_find_by_name_output(
        _run(sched.find_by_name_command("xprtest_held")).stdout, "xprtest_held"
    )
    assert found == {"xprtest_held": held}
    partition = _run(["squeue", "-h", "-j", held, "-o", "%P"]).stdout.strip()
    assert partition == "debug"
    _run(sched.cancel_command([held]))
    assert _wait_state(held, {QueueState.CANCELLED}) is QueueState.CANCELLED
    acct = _run(sched.accounting_command([held, ok])).stdout
    assert sched.parse_accounting_output(acct, [held, ok]) == {
        held: QueueState.CANCELLED,
        ok: QueueState.COMPLETED,
    }
    assert "USER" not in os.environ
