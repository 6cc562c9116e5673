"""PBS Professional / OpenPBS backend: header, command lines and parsing.

There is no PBS server here. The outputs below follow the documented formats:
- ``qstat -f -F json``: the example in OpenPBS ``doc/man1/qstat.1B`` (``timestamp``,
  ``pbs_version``, ``pbs_server``, ``Jobs`` keyed by ``<seq>.<server>``) with resource
  lists nested as objects (``"Resource_List":{"walltime":...}``), as qstat prints them;
- ``Exit_status`` values: OpenPBS ``src/include/job.h`` (``JOB_EXEC_KILL_WALLTIME`` -29,
  ``JOB_EXEC_KILL_MEM`` -27, ``JOB_EXEC_RERUN_MS_FAIL`` -20) and the PBS Pro convention
  ``256 + signal`` for jobs PBS killed with a signal;
- ``qsub`` prints the new job id ``<seq>.<server>`` on stdout.
"""

import os
import subprocess

import pytest

from expyre.schedulers import get_scheduler
from expyre.schedulers.base import JobRequest, QueueState
from expyre.schedulers.pbs import PBSScheduler


def request(**over):
    fields = dict(
        job_name="relax_0123abcd",
        partition="workq",
        num_nodes=2,
        num_cores=16,
        num_cores_per_node=8,
        max_time_s=2 * 86400,
        max_mem_kB=None,
        stdout="/home/u/jobs/relax_0123abcd/job.stdout",
        stderr="/home/u/jobs/relax_0123abcd/job.stderr",
    )
    fields.update(over)
    return JobRequest(**fields)


def test_default_header():
    assert get_scheduler("pbs").default_header(request(max_mem_kB=1048576)) == [
        "#PBS -N relax_0123abcd",
        "#PBS -q workq",
        "#PBS -l select=2:ncpus=8:mpiprocs=8:mem=1048576kb",
        "#PBS -l walltime=48:00:00",  # walltime takes hours, no day prefix
        "#PBS -o /home/u/jobs/relax_0123abcd/job.stdout",
        "#PBS -e /home/u/jobs/relax_0123abcd/job.stderr",
        "#PBS -r n",
    ]


def test_header_rejects_colon_in_paths_and_cleans_names():
    with pytest.raises(ValueError, match="host:path"):
        PBSScheduler().default_header(request(stdout="/home/u/a:b/out"))
    lines = PBSScheduler().default_header(request(job_name="9 lives", stdout="/home/u/my jobs/o"))
    assert lines[0] == "#PBS -N j9_lives"
    assert '#PBS -o "/home/u/my jobs/o"' in lines


def test_submit():
    sched = PBSScheduler()
    assert sched.submit_command("/j/job.sh", "/j") == ["qsub", "/j/job.sh"]
    assert sched.parse_submit_output("1234.pbsserver\n") == "1234.pbsserver"
    assert (
        sched.parse_submit_output("1235.pbs.cluster.example.org\n")
        == "1235.pbs.cluster.example.org"
    )
    assert sched.parse_submit_output("77\n") == "77"
    with pytest.raises(ValueError, match="qsub printed no PBS job id"):
        sched.parse_submit_output("qsub: Unknown queue\n")


QSTAT_JSON = """{
    "timestamp":1479277336,
    "pbs_version":"19.1.3",
    "pbs_server":"vbox",
    "Jobs":{
        "1.vbox":{"Job_Name":"xpr_a","Job_Owner":"u@vbox","job_state":"Q","queue":"workq"},
        "2.vbox":{"Job_Name":"xpr_b","Job_Owner":"u@vbox","job_state":"H","queue":"workq"},
        "3.vbox":{"Job_Name":"xpr_c","Job_Owner":"u@vbox","job_state":"R","queue":"workq",
                  "resources_used":{"walltime":"00:01:02"},"Resource_List":{"walltime":"00:10:00"}},
        "4.vbox":{"Job_Name":"xpr_d","job_state":"F","Exit_status":0},
        "5.vbox":{"Job_Name":"xpr_e","job_state":"F","Exit_status":-29},
        "6.vbox":{"Job_Name":"xpr_f","job_state":"F","Exit_status":271,
                  "resources_used":{"walltime":"00:10:01"},"Resource_List":{"walltime":"00:10:00"}},
        "7.vbox":{"Job_Name":"xpr_g","job_state":"F","Exit_status":265,
                  "resources_used":{"walltime":"00:00:12"},"Resource_List":{"walltime":"00:10:00"}},
        "8.vbox":{"Job_Name":"xpr_h","job_state":"F"},
        "9.vbox":{"Job_Name":"xpr_i","job_state":"F","Exit_status":-27},
        "10.vbox":{"Job_Name":"xpr_j","job_state":"F","Exit_status":-20},
        "11.vbox":{"Job_Name":"xpr_k","job_state":"F","Exit_status":1},
        "12.vbox":{"Job_Name":"xpr_l","job_state":"E"},
        "13.vbox":{"Job_Name":"xpr_m","job_state":"S"},
        "14.vbox":{"Job_Name":"xpr_n","job_state":"W"}
    }
}"""


def test_status_maps_states_and_exit_codes():
    sched = PBSScheduler()
    ids = [f"{i}.vbox" for i in range(1, 15)] + ["99.vbox"]
    assert sched.parse_status_output(QSTAT_JSON, ids) == {
        "1.vbox": QueueState.QUEUED,
        "2.vbox": QueueState.HELD,
        "3.vbox": QueueState.RUNNING,
        "4.vbox": QueueState.COMPLETED,
        "5.vbox": QueueState.TIMEOUT,  # JOB_EXEC_KILL_WALLTIME
        "6.vbox": QueueState.TIMEOUT,  # SIGTERM at the walltime limit (older PBS Pro)
        "7.vbox": QueueState.CANCELLED,  # SIGKILL well before the limit: qdel
        "8.vbox": QueueState.CANCELLED,  # finished without ever running
        "9.vbox": QueueState.OUT_OF_MEMORY,
        "10.vbox": QueueState.NODE_FAIL,
        "11.vbox": QueueState.FAILED,
        "12.vbox": QueueState.RUNNING,
        "13.vbox": QueueState.HELD,
        "14.vbox": QueueState.QUEUED,
    }


def test_status_matches_ids_with_or_without_server_suffix():
    states = PBSScheduler().parse_status_output(QSTAT_JSON, ["3", "4.vbox.example.org"])
    assert states == {"3": QueueState.RUNNING, "4.vbox.example.org": QueueState.COMPLETED}


def test_accounting_keeps_only_finished_jobs():
    sched = PBSScheduler()
    assert sched.parse_accounting_output(QSTAT_JSON, ["1.vbox", "4.vbox", "7.vbox"]) == {
        "4.vbox": QueueState.COMPLETED,
        "7.vbox": QueueState.CANCELLED,
    }


def test_tolerates_the_invalid_json_some_pbs_versions_print():
    # known qstat -F json defects: numeric-looking names unquoted (inf), raw backslashes
    text = '{"Jobs":{"5.s":{"Job_Name":inf,"job_state":"R","Variable_List":{"P":"C:\\dir"}}}}'
    assert PBSScheduler().parse_status_output(text, ["5.s"]) == {"5.s": QueueState.RUNNING}
    with pytest.raises(ValueError, match="not JSON"):
        PBSScheduler().parse_status_output("{garbage", ["5.s"])


def test_find_by_name():
    found = PBSScheduler().parse_find_by_name_output(QSTAT_JSON, "xpr_c")
    assert found == {"xpr_c": "3.vbox"}


def _fake_qstat(tmp_path, stderr_lines, code):
    """A stand-in qstat printing a fixed JSON document and error lines (no PBS server here)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    err = "".join(f"echo {line!r} >&2\n" for line in stderr_lines)
    (bin_dir / "qstat").write_text(f"#!/bin/sh\ncat <<'EOF'\n{QSTAT_JSON}\nEOF\n{err}exit {code}\n")
    (bin_dir / "qstat").chmod(0o755)
    return dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")


@pytest.mark.parametrize(
    ("stderr_lines", "code", "expected_rc"),
    [
        ([], 0, 0),
        (["qstat: Unknown Job Id 99.vbox"], 153, 0),  # a job the server forgot: not an error
        (["Connection refused", "qstat: cannot connect to server vbox (errno=15010)"], 2, 1),
    ],
)
def test_status_command_only_fails_for_real_errors(tmp_path, stderr_lines, code, expected_rc):
    argv = PBSScheduler().status_command(["3.vbox", "99.vbox"])
    proc = subprocess.run(
        argv, capture_output=True, text=True, env=_fake_qstat(tmp_path, stderr_lines, code)
    )
    assert proc.returncode == expected_rc
    assert PBSScheduler().parse_status_output(proc.stdout, ["3.vbox"]) == {
        "3.vbox": QueueState.RUNNING
    }
    if expected_rc:
        assert "cannot connect" in proc.stderr
