"""Job arrays in the schedulers: header lines, per-task states combined per array, site limits.

Slurm and SGE outputs below were recorded from the live daemons of this machine (an array of
4 / 3 sleeping tasks); PBS Pro's are from its documentation (no PBS server can run here).
"""

import pytest

from expyre.schedulers import get_scheduler
from expyre.schedulers.base import QueueState, combine_states

# recorded: squeue --me --noheader --states=all --format=%i|%T|%r, array 190 of 4 tasks
# (pending as one line), plus a made-up mix of a running task and the pending rest
SQUEUE_PENDING = "190_[0-3]|PENDING|Resources\n55|RUNNING|None\n"
SQUEUE_MIXED = "191_0|COMPLETED|None\n191_1|RUNNING|None\n191_[2-3%1]|PENDING|JobArrayTaskLimit\n"
SQUEUE_CANCELLED = "190_[0-3]|CANCELLED|Resources\n"

# recorded: qstat -xml with array 29 of 3 tasks, tasks 1 and 2 running, 3 pending
QSTAT_ARRAY = """<?xml version='1.0'?>
<job_info  xmlns:xsd="http://arc.liv.ac.uk/repos/darcs/sge/source/dist/util/resources/schemas/qstat/qstat.xsd">
  <queue_info>
    <job_list state="running">
      <JB_job_number>29</JB_job_number><JB_name>arrprobe</JB_name><state>r</state><tasks>1</tasks>
    </job_list>
    <job_list state="running">
      <JB_job_number>29</JB_job_number><JB_name>arrprobe</JB_name><state>r</state><tasks>2</tasks>
    </job_list>
  </queue_info>
  <job_info>
    <job_list state="pending">
      <JB_job_number>29</JB_job_number><JB_name>arrprobe</JB_name><state>qw</state><tasks>3</tasks>
    </job_list>
    <job_list state="pending">
      <JB_job_number>30</JB_job_number><JB_name>other</JB_name><state>hqw</state><tasks></tasks>
    </job_list>
  </job_info>
</job_info>
"""


def test_combined_state_is_live_while_any_task_is_and_killed_wins_after():
    R, Q, H = QueueState.RUNNING, QueueState.QUEUED, QueueState.HELD
    C, F, X = QueueState.COMPLETED, QueueState.FAILED, QueueState.CANCELLED
    assert combine_states([C, Q, R]) == R
    assert combine_states([H, Q]) == Q
    assert combine_states([C, F, C]) == F
    assert combine_states([C, X, F]) == X
    assert combine_states([C, C]) == C


def test_slurm_array_header_states_and_site_limit():
    sched = get_scheduler("slurm")
    assert sched.array_header(8) == ["#SBATCH --array=0-7"]
    assert sched.parse_status_output(SQUEUE_PENDING, ["190"]) == {"190": QueueState.QUEUED}
    assert sched.parse_status_output(SQUEUE_MIXED, ["191", "55"]) == {"191": QueueState.RUNNING}
    assert sched.parse_status_output(SQUEUE_CANCELLED, ["190"]) == {"190": QueueState.CANCELLED}
    # recorded: scontrol show config of this machine
    assert (
        sched.parse_max_array_size("MaxArraySize            = 1001\nMaxJobCount = 10000\n") == 1001
    )
    assert sched.max_array_size_command() == ["scontrol", "show", "config"]


def test_sge_array_header_states_and_site_limit():
    sched = get_scheduler("sge")
    assert sched.array_header(3) == ["#$ -t 1-3"]
    states = sched.parse_status_output(QSTAT_ARRAY, ["29", "30"])
    assert states == {"29": QueueState.RUNNING, "30": QueueState.HELD}
    # recorded: qconf -sconf of this machine
    assert (
        sched.parse_max_array_size(
            "max_aj_instances             2000\nmax_aj_tasks                 75000\n"
        )
        == 75000
    )
    assert sched.parse_max_array_size("max_aj_tasks 0\n") is None  # 0: no limit


def test_pbs_array_header_and_site_limit_from_documented_output():
    sched = get_scheduler("pbs")
    assert sched.array_header(5) == ["#PBS -J 0-4"]
    # PBS Pro documents `qmgr -c "list server max_array_size"` printing "max_array_size = 10000"
    assert sched.parse_max_array_size("Server pbs\n    max_array_size = 10000\n") == 10000
    # an array's id is "123[].server" and qsub prints it as such
    assert sched.parse_submit_output("123[].pbsserver\n") == "123[].pbsserver"


def test_local_queue_has_no_arrays():
    with pytest.raises(NotImplementedError, match="no job arrays"):
        get_scheduler("local", queue_dir="/tmp/x").array_header(2)
