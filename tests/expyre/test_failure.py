"""Failure categories decided from recorded real outputs (pure, no queue needed).

The accounting lines and stderr texts below were recorded from this machine's Slurm (jobcomp
log read by ``sacct -c``) and Grid Engine (``qacct -j``) for jobs that completed, exited 3,
hit their time limit, were cancelled, and (SGE) ran into an ``h_vmem`` limit.
"""

import pytest

from expyre.failure import CATEGORIES, categorise, exception_type
from expyre.schedulers import get_scheduler

# sacct -c -X -n -P -o JobID,State,ExitCode -j 1,2,3,4,5  (recorded)
SACCT_C = """1|COMPLETED|0:0
2|FAILED|3:0
3|TIMEOUT|0:0
4|CANCELLED|0:0
5|FAILED|1:0
"""
# stderr written by slurmstepd into the job's --error file (recorded)
SLURM_TIMEOUT_STDERR = (
    "slurmstepd-vm: error: *** JOB 3 ON vm CANCELLED AT 2026-11-30T21:54:49 DUE TO TIME LIMIT ***"
)
SLURM_CANCEL_STDERR = "slurmstepd-vm: error: *** JOB 4 ON vm CANCELLED AT 2026-11-30T21:53:38 ***"
# Slurm's text for preemption and node failure, same layout (from slurmstepd's messages)
SLURM_PREEMPT_STDERR = (
    "slurmstepd-vm: error: *** JOB 7 ON vm CANCELLED AT 2026-11-30T21:59:01 DUE TO PREEMPTION ***"
)
# python without expyre installed, as the job script runs it (recorded)
NO_EXPYRE_STDERR = (
    "/usr/bin/python3: Error while finding module specification for 'expyre.runner' "
    "(ModuleNotFoundError: No module named 'expyre')"
)
NO_PYTHON_STDERR = "/bin/bash: line 1: nosuchpython3: command not found"

# qacct -j 2..6 (recorded; trimmed to the fields that matter, order as printed)
QACCT = """==============================================================
jobname      sl_ok.sh
jobnumber    2
failed       0
exit_status  0
category     NONE
==============================================================
jobname      sl_fail.sh
jobnumber    3
failed       0
exit_status  3
category     NONE
==============================================================
jobname      sl_sleep.sh
jobnumber    4
failed       37  : qmaster enforced h_rt, h_cpu, or h_vmem limit
exit_status  137                  (Killed)
category     -l h_rt=5
==============================================================
jobname      sl_sleep.sh
jobnumber    5
failed       100 : assumedly after job
exit_status  137                  (Killed)
category     NONE
==============================================================
jobname      sge_mem.sh
jobnumber    6
failed       0
exit_status  1
category     -l h_vmem=200M
"""
# h_vmem is an address-space limit: Python itself raises MemoryError (recorded stderr)
SGE_HVMEM_STDERR = (
    'Traceback (most recent call last):\n  File "<string>", line 1, in <module>\nMemoryError'
)


# PBS has no server here (a fake, labelled): qstat -f -F json of finished jobs, with Exit_status
# values as documented by OpenPBS (src/include/job.h): -29 JOB_EXEC_KILL_WALLTIME, -27
# JOB_EXEC_KILL_MEM, -20 JOB_EXEC_RERUN_MS_FAIL (node), 271 = 256 + SIGTERM (qdel), 1 exit code
PBS_QSTAT = """{"timestamp":1479277336,"pbs_version":"19.1.3","pbs_server":"vbox","Jobs":{
 "5.vbox":{"Job_Name":"a","job_state":"F","Exit_status":-29},
 "6.vbox":{"Job_Name":"b","job_state":"F","Exit_status":271,
           "resources_used":{"walltime":"00:00:12"},"Resource_List":{"walltime":"00:10:00"}},
 "9.vbox":{"Job_Name":"c","job_state":"F","Exit_status":-27},
 "10.vbox":{"Job_Name":"d","job_state":"F","Exit_status":-20},
 "11.vbox":{"Job_Name":"e","job_state":"F","Exit_status":1}}}"""


def _pbs(job_id):
    return get_scheduler("pbs").parse_accounting_output(PBS_QSTAT, [job_id]).get(job_id)


def _failed_record(exc_repr, stage="call"):
    return {"ok": False, "stage": stage, "exception_repr": exc_repr, "traceback": "..."}


def _slurm(job_id):
    return get_scheduler("slurm").parse_accounting_output(SACCT_C, [job_id]).get(job_id)


def _sge(job_id):
    return get_scheduler("sge").parse_accounting_output(QACCT, [job_id]).get(job_id)


@pytest.mark.parametrize(
    ("queue", "record", "started", "stderr", "expected"),
    [
        # Slurm, from the job completion log
        (lambda: _slurm("3"), None, True, SLURM_TIMEOUT_STDERR, "timeout"),
        (lambda: _slurm("4"), None, True, SLURM_CANCEL_STDERR, "cancelled"),
        (lambda: _slurm("5"), None, False, NO_EXPYRE_STDERR, "bad_environment"),
        (lambda: _slurm("2"), _failed_record("ValueError('bad item')"), True, "", "exception"),
        # a preempted job is a node failure, whatever state word the version uses
        (lambda: _slurm("4"), None, True, SLURM_PREEMPT_STDERR, "node_failure"),
        (lambda: "preempted", None, True, SLURM_PREEMPT_STDERR, "node_failure"),
        # Grid Engine, from qacct
        (lambda: _sge("4"), None, True, "", "timeout"),
        (lambda: _sge("5"), None, True, "", "cancelled"),
        (lambda: _sge("6"), _failed_record("MemoryError()"), True, SGE_HVMEM_STDERR, "out_of_memory"),
        (lambda: _sge("3"), None, False, NO_PYTHON_STDERR, "bad_environment"),
        # the job script ended before the runner started, with no recognised message
        (lambda: _sge("3"), None, False, "", "bad_environment"),
        # killed by a signal the queue did not send: no cause known
        (lambda: _sge("3"), None, True, "", "unknown"),
        # PBS exit status (fake server, documented values)
        (lambda: _pbs("5.vbox"), None, True, "", "timeout"),
        (lambda: _pbs("6.vbox"), None, True, "", "cancelled"),
        (lambda: _pbs("9.vbox"), None, True, "", "out_of_memory"),
        (lambda: _pbs("10.vbox"), None, True, "", "node_failure"),
        (lambda: _pbs("11.vbox"), _failed_record("KeyError('x')"), True, "", "exception"),
        # gone from queue and accounting, no record: died with its machine or launcher
        (lambda: "vanished", None, True, "", "node_failure"),
        (lambda: "node_fail", None, False, "", "node_failure"),
        (lambda: "out_of_memory", None, True, "", "out_of_memory"),
        # stderr alone (accounting unavailable): memory killers' own words
        (lambda: "failed", None, True, "slurmstepd: error: Detected 1 oom_kill event", "out_of_memory"),
        (lambda: "failed", None, True, "Exceeded job memory limit", "out_of_memory"),
        # the call could not be loaded: the function's module is missing where the job runs
        (lambda: "failed", _failed_record("ModuleNotFoundError(\"No module named 'mymod'\")", "load"), True, "", "bad_environment"),
    ],
)  # fmt: skip
def test_category_table(queue, record, started, stderr, expected):
    state = queue()
    state = getattr(state, "value", state)
    diagnosis = categorise(queue_state=state, record=record, runner_started=started, stderr=stderr)
    assert diagnosis.category == expected, diagnosis
    assert diagnosis.category in CATEGORIES
    assert diagnosis.reason


def test_exception_keeps_its_type():
    d = categorise(
        queue_state="failed",
        record=_failed_record("KeyError('energy')"),
        runner_started=True,
    )
    assert (d.category, d.exception_type) == ("exception", "KeyError")
    assert exception_type("pkg.errors.ConvergenceError('x')") == "pkg.errors.ConvergenceError"
    assert exception_type(None) is None


def test_result_record_outranks_the_queue():
    """A function that raised before the queue killed it: the exception is the cause."""
    d = categorise(
        queue_state="timeout", record=_failed_record("RuntimeError('x')"), runner_started=True
    )
    assert d.category == "exception"
