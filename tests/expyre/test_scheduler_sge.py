"""Grid Engine backend: header, command lines and parsing.

Outputs below were recorded from Son of Grid Engine 8.1.9 (Debian 12 gridengine packages)
started by ci/start-sge.sh. Tests marked ``remote`` run the commands against that live SGE.
"""

import shutil
import subprocess
import time

import pytest

from expyre.schedulers import get_scheduler
from expyre.schedulers.base import JobRequest, QueueState
from expyre.schedulers.sge import SGEScheduler, sge_state


def request(**over):
    fields = dict(
        job_name="relax_0123abcd",
        partition="all.q",
        num_nodes=1,
        num_cores=2,
        num_cores_per_node=2,
        max_time_s=90000,
        max_mem_kB=None,
        stdout="/scratch/jobs/relax_0123abcd/job.stdout",
        stderr="/scratch/jobs/relax_0123abcd/job.stderr",
    )
    fields.update(over)
    return JobRequest(**fields)


def test_default_header():
    lines = get_scheduler("sge").default_header(request())
    assert lines == [
        "#$ -N relax_0123abcd",
        "#$ -q all.q",
        "#$ -pe smp 2",
        "#$ -l h_rt=25:00:00",  # SGE takes no day prefix: 25 h, not 1-01:00:00
        "#$ -o /scratch/jobs/relax_0123abcd/job.stdout",
        "#$ -e /scratch/jobs/relax_0123abcd/job.stderr",
        "#$ -cwd",
        "#$ -S /bin/bash",
        "#$ -r n",
    ]


def test_header_single_core_needs_no_parallel_environment_and_pe_is_configurable():
    one = SGEScheduler().default_header(request(num_cores=1, num_cores_per_node=1))
    assert not any(" -pe " in line for line in one)
    mpi = SGEScheduler(parallel_environment="mpi").default_header(request(num_cores=64))
    assert "#$ -pe mpi 64" in mpi


def test_header_names_and_paths():
    lines = SGEScheduler().default_header(
        request(job_name="1st run: a/b@c", stdout="/data/my jobs/out", stderr="/e")
    )
    # SGE refuses '/', ':', '@' and a leading digit in names (checked on the live qmaster)
    assert lines[0] == "#$ -N j1st_run__a_b_c"
    assert '#$ -o "/data/my jobs/out"' in lines
    with pytest.raises(ValueError, match=r"'\$'"):
        SGEScheduler().default_header(request(stdout="/data/$JOB_ID/out"))


def test_submit():
    sched = SGEScheduler()
    assert sched.submit_command("/j/job.sh", "/j") == ["qsub", "-terse", "/j/job.sh"]
    assert sched.parse_submit_output("42\n") == "42"
    assert sched.parse_submit_output('Your job 43 ("x") has been submitted\n') == "43"
    with pytest.raises(ValueError, match="qsub printed no job id"):
        sched.parse_submit_output("Unable to run job: denied\n")


# recorded: qstat -xml with one running, one queued (2 slots) and one held job
QSTAT_XML = """<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
    <job_list state="running">
      <JB_job_number>20</JB_job_number>
      <JAT_prio>0.25000</JAT_prio>
      <JB_name>xpr_r</JB_name>
      <JB_owner>root</JB_owner>
      <state>r</state>
      <JAT_start_time>2026-11-25T21:14:03</JAT_start_time>
      <queue_name>all.q@vm</queue_name>
      <slots>1</slots>
    </job_list>
  </queue_info>
  <job_info>
    <job_list state="pending">
      <JB_job_number>22</JB_job_number>
      <JAT_prio>0.75000</JAT_prio>
      <JB_name>xpr_q</JB_name>
      <JB_owner>root</JB_owner>
      <state>qw</state>
      <JB_submission_time>2026-11-25T21:14:03</JB_submission_time>
      <queue_name></queue_name>
      <slots>2</slots>
    </job_list>
    <job_list state="pending">
      <JB_job_number>21</JB_job_number>
      <JAT_prio>0.00000</JAT_prio>
      <JB_name>xpr_h</JB_name>
      <JB_owner>root</JB_owner>
      <state>hqw</state>
      <JB_submission_time>2026-11-25T21:14:03</JB_submission_time>
      <queue_name></queue_name>
      <slots>1</slots>
    </job_list>
  </job_info>
</job_info>
"""


def test_status_one_call_and_parse():
    sched = SGEScheduler()
    assert sched.status_command([str(i) for i in range(500)]) == ["qstat", "-xml"]
    states = sched.parse_status_output(QSTAT_XML, ["20", "21", "22", "23"])
    assert states == {"20": QueueState.RUNNING, "21": QueueState.HELD, "22": QueueState.QUEUED}
    assert sched.parse_status_output(QSTAT_XML, ["21"]) == {"21": QueueState.HELD}


def test_state_codes():
    assert sge_state("dr") is QueueState.CANCELLED
    assert sge_state("Eqw") is QueueState.FAILED
    assert sge_state("hRwq") is QueueState.HELD
    assert sge_state("Rr") is QueueState.RUNNING
    assert sge_state("t") is QueueState.RUNNING
    assert sge_state("s") is QueueState.HELD
    assert sge_state("zz") is QueueState.UNKNOWN


def test_find_by_name():
    sched = SGEScheduler()
    assert sched.parse_find_by_name_output(QSTAT_XML, "xpr_") == {
        "xpr_r": "20",
        "xpr_q": "22",
        "xpr_h": "21",
    }
    assert sched.parse_find_by_name_output(QSTAT_XML, "xpr_h") == {"xpr_h": "21"}


# recorded qacct -j blocks (trimmed to the fields that matter, order as printed)
QACCT = """==============================================================
qname        all.q
jobnumber    3
failed       37  : qmaster enforced h_rt, h_cpu, or h_vmem limit
exit_status  137                  (Killed)
category     -l h_rt=5
==============================================================
qname        all.q
jobnumber    18
failed       100 : assumedly after job
exit_status  137                  (Killed)
==============================================================
qname        all.q
jobnumber    19
failed       0
exit_status  1
==============================================================
qname        all.q
jobnumber    1
failed       0
exit_status  0
"""


def test_accounting():
    sched = SGEScheduler()
    argv = sched.accounting_command(["3", "18"])
    assert argv[:2] == ["sh", "-c"] and "qacct -j" in argv[2]
    with pytest.raises(ValueError, match="malformed"):
        sched.accounting_command(["3;reboot"])
    assert sched.parse_accounting_output(QACCT, ["1", "3", "18", "19", "77"]) == {
        "1": QueueState.COMPLETED,
        "3": QueueState.TIMEOUT,
        "18": QueueState.CANCELLED,
        "19": QueueState.FAILED,
    }


# ---------------------------------------------------------------- live SGE (ci/start-sge.sh)

needs_sge = pytest.mark.skipif(shutil.which("qsub") is None, reason="no Grid Engine client here")


def _run(argv, cwd=None, check=True):
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=check, timeout=60)


def _submit(d, name, body, extra_header=(), **over):
    d.mkdir()
    sched = SGEScheduler()
    req = request(
        job_name=name,
        stdout=str(d / "out"),
        stderr=str(d / "err"),
        num_cores=1,
        num_cores_per_node=1,
        **over,
    )
    header = [*sched.default_header(req), *extra_header]
    (d / "job.sh").write_text("\n".join(["#!/bin/bash", *header, body, ""]))
    return sched.parse_submit_output(
        _run(sched.submit_command(str(d / "job.sh"), str(d)), cwd=d).stdout
    )


def _poll(job_id, until, timeout=90):
    """Queue state until it satisfies ``until``; then accounting once the job left the queue."""
    sched = SGEScheduler()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = sched.parse_status_output(
            _run(sched.status_command([job_id])).stdout, [job_id]
        ).get(job_id)
        if state is None:  # left the queue: accounting says how (flush_time is 1 s in CI)
            acct = _run(sched.accounting_command([job_id])).stdout
            state = sched.parse_accounting_output(acct, [job_id]).get(job_id)
        if state is not None and until(state):
            return state
        time.sleep(0.5)
    return None


@pytest.mark.remote
@needs_sge
def test_live_submit_hold_cancel_timeout(tmp_path, monkeypatch):
    monkeypatch.delenv("USER", raising=False)
    sched = SGEScheduler()
    ok = _submit(tmp_path / "ok", "xprtest ok;$(touch PWNED)", "echo hello from $JOB_NAME")
    # held from its submission: a qhold afterwards can come too late when a slot is free
    held = _submit(tmp_path / "held", "xprtest_held", "sleep 300", ["#$ -h"])
    slow = _submit(tmp_path / "slow", "xprtest_slow", "sleep 300")
    over = _submit(tmp_path / "over", "xprtest_over", "sleep 300", max_time_s=5)

    assert _poll(ok, lambda s: s.is_finished) is QueueState.COMPLETED
    assert (tmp_path / "ok" / "out").read_text().strip() == "hello from xprtest_ok___touch_PWNED_"
    assert not (tmp_path / "ok" / "PWNED").exists()
    assert _poll(held, lambda s: s is QueueState.HELD) is QueueState.HELD
    names = sched.parse_find_by_name_output(
        _run(sched.find_by_name_command("xprtest_")).stdout, "xprtest_"
    )
    assert names["xprtest_held"] == held

    assert _poll(slow, lambda s: s is QueueState.RUNNING) is QueueState.RUNNING
    _run(sched.cancel_command([slow, held]))
    assert _poll(slow, lambda s: s.is_finished) is QueueState.CANCELLED
    assert _poll(over, lambda s: s.is_finished) is QueueState.TIMEOUT
