"""expyre-wfl 0.1.6's scheduler methods that run queue commands, and 0.1.6's names.

``Slurm``, ``SGE``, ``PBS`` and ``Local`` (and ``System.scheduler``) offer 0.1.6's
``submit``, ``status``, ``hold``, ``release`` and ``cancel``. Tests marked ``remote`` run
them against this machine's live Slurm and SGE. There is no PBS server here: the PBS test
uses stand-in ``qsub``/``qstat``/``qhold``/``qrls``/``qdel`` scripts (a labelled fake)
that record their arguments, so it checks the commands run, not PBS itself.
"""

import shutil
import subprocess
import time

import pytest
from expyre_testutil import local_system, write_config

import expyre.config
import expyre.schedulers
from expyre.config import PartitionConfig, SystemConfig
from expyre.schedulers.local import Local, LocalScheduler
from expyre.schedulers.pbs import PBS, PBSScheduler
from expyre.schedulers.sge import SGE, SGEScheduler
from expyre.schedulers.slurm import Slurm, SlurmScheduler
from expyre.system import System

ONE_CORE = {"num_nodes": 1, "num_cores": 1, "num_cores_per_node": 2}


def _wait_status(sched, remote_id, wanted, timeout=180):
    status = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = sched.status([remote_id])[remote_id]
        if status in wanted:
            return status
        time.sleep(0.5)
    return status


def test_registry_and_names_of_0_1_6():
    assert expyre.schedulers.schedulers == {"slurm": Slurm, "pbs": PBS, "local": Local, "sge": SGE}
    assert expyre.schedulers.Slurm is Slurm
    for legacy, pure in ((Slurm, SlurmScheduler), (SGE, SGEScheduler), (PBS, PBSScheduler)):
        sched = legacy("user@cluster", "ssh -p 2222")
        assert isinstance(sched, pure) and sched.host == "user@cluster"
        assert sched.remsh_cmd == "ssh -p 2222"
    assert Slurm("h").hold_command(["7"]) == ["scontrol", "hold", "7"]
    assert SGE("h").release_command(["7"]) == ["qrls", "7"]
    assert PBS("h").hold_command(["7.srv"]) == ["qhold", "7.srv"]
    with pytest.raises(NotImplementedError, match="cannot hold"):
        LocalScheduler("/q").hold_command(["1"])


def test_node_dict_env_var_commands_compute_the_missing_count():
    lines = Slurm.node_dict_env_var_commands({"num_nodes": 3})
    out = subprocess.run(
        ["bash", "-c", "EXPYRE_NUM_CORES_PER_NODE=4; " + "; ".join(lines) + "; echo $EXPYRE_NUM_CORES"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert out.strip() == "12"


def test_system_attributes_and_scheduler_of_0_1_6(tmp_path):
    config = SystemConfig(
        name="c",
        host="me@cluster",
        scheduler="slurm",
        partitions={"p": PartitionConfig("p", num_cores=8, max_time_s=3600)},
        header=["#SBATCH --account=a"],
        commands=["module load x"],
    )
    system = System(config, tmp_path)
    assert system.host == "me@cluster"
    assert system.partitions == {"p": {"num_cores": 8, "max_time": 3600, "max_mem": None}}
    assert system.queuing_sys_header == ["#SBATCH --account=a"]
    assert system.commands == ["module load x"]
    # the 0.1.6 way of choosing nodes works on it
    from expyre.resources import Resources

    assert Resources(max_time="1h", num_cores=16).find_nodes(system.partitions)[0] == "p"
    # its scheduler runs its commands through the system (its transport and retries)
    assert isinstance(system.scheduler, Slurm) and system.scheduler._runner() is system
    assert system.scheduler.host == "me@cluster"


def test_local_queue_submit_status_cancel(project, tmp_path):
    write_config(project, {"local": local_system(num_cores=2)})
    assert isinstance(expyre.config.systems["local"].scheduler, Local)
    sched = Local()  # 0.1.6 style: no arguments -> the project's local queue
    run_dir = tmp_path / "run"
    done = sched.submit(
        "xprlegacy_ok", str(run_dir), "cpu", ["echo $EXPYRE_NUM_CORES > out.txt"], 60, [], ONE_CORE
    )
    assert _wait_status(sched, done, {"done"}) == "done"
    assert (run_dir / "out.txt").read_text().strip() == "1"
    slow = sched.submit(
        "xprlegacy_slow", str(tmp_path / "slow"), "cpu", ["sleep 300"], 600, [], ONE_CORE
    )
    assert _wait_status(sched, slow, {"running"}) == "running"
    sched.cancel(slow)
    assert _wait_status(sched, slow, {"other", "done"}) in ("other", "done")
    with pytest.raises(NotImplementedError):
        sched.hold(slow)


def _fake_pbs(tmp_path, monkeypatch):
    """Stand-in PBS client commands (no PBS server can run here): qsub prints a job id,
    qhold/qrls/qdel record their calls and change the state qstat reports."""
    bin_dir = tmp_path / "fakepbs"
    bin_dir.mkdir()
    state, log = tmp_path / "pbs_state", tmp_path / "pbs_log"
    state.write_text("Q")
    qstat = (
        "#!/bin/sh\n"
        f'echo "qstat $*" >> {log}\n'
        f"s=$(cat {state})\n"
        "cat <<EOF\n"
        '{"timestamp": 1, "pbs_version": "fake", "pbs_server": "fake", "Jobs": '
        '{"12.fake": {"Job_Name": "xprlegacy", "job_state": "$s"}}}\n'
        "EOF\n"
    )
    scripts = {
        "qsub": f'#!/bin/sh\necho "qsub $*" >> {log}\necho 12.fake\n',
        "qstat": qstat,
        "qhold": f'#!/bin/sh\necho "qhold $*" >> {log}\necho H > {state}\n',
        "qrls": f'#!/bin/sh\necho "qrls $*" >> {log}\necho Q > {state}\n',
        "qdel": f'#!/bin/sh\necho "qdel $*" >> {log}\necho F > {state}\n',
    }
    for name, text in scripts.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    return log


def test_pbs_methods_run_the_pbs_commands_with_a_fake_pbs(project, tmp_path, monkeypatch):
    log = _fake_pbs(tmp_path, monkeypatch)
    sched = PBS(None)
    run_dir = tmp_path / "run"
    rid = sched.submit(
        "xprlegacy", str(run_dir), "workq", ["echo hi"], "1h", ["#PBS -l place=scatter"], ONE_CORE
    )
    assert rid == "12.fake"
    script = (run_dir / "job.script.pbs").read_text()
    assert "#PBS -l walltime=1:00:00" in script and "#PBS -l place=scatter" in script
    assert script.splitlines()[0] == "#!/bin/bash" and "echo hi" in script
    assert sched.status(rid) == {"12.fake": "queued"}
    sched.hold([rid])
    assert sched.status(rid) == {"12.fake": "held"}
    sched.release(rid)
    assert sched.status(rid) == {"12.fake": "queued"}
    sched.cancel(rid)
    calls = log.read_text().splitlines()
    assert [c.split()[0] for c in calls if not c.startswith("qstat")] == [
        "qsub", "qhold", "qrls", "qdel",
    ]  # fmt: skip
    assert all(c.endswith("12.fake") for c in calls if c.split()[0] in ("qhold", "qrls", "qdel"))
    # as in 0.1.6, node_dict may give nodes or cores; the other follows from cores per node
    sched.submit(
        "xprlegacy2", str(run_dir), "workq", [], 60, [], {"num_nodes": 2, "num_cores_per_node": 4}
    )
    assert "export EXPYRE_NUM_CORES=8" in (run_dir / "job.script.pbs").read_text()
    with pytest.raises(ValueError, match="num_cores_per_node"):
        sched.submit("xprlegacy3", str(run_dir), "workq", [], 60, [], {"num_cores": 4})


needs_slurm = pytest.mark.skipif(shutil.which("sbatch") is None, reason="no Slurm client here")
needs_sge = pytest.mark.skipif(shutil.which("qsub") is None, reason="no Grid Engine client here")


def _live_cycle(sched, tmp_path, partition, later_header):
    """Submit a job that runs, and one held back by its header: hold, release, cancel."""
    ok = sched.submit(
        "xprlegacy_ok", str(tmp_path / "ok"), partition,
        ["echo cores $EXPYRE_NUM_CORES > out.txt"], 60, [], ONE_CORE,
    )  # fmt: skip
    later = sched.submit(
        "xprlegacy_later", str(tmp_path / "later"), partition, ["true"], 60, later_header, ONE_CORE
    )
    assert _wait_status(sched, later, {"queued"}) == "queued"
    sched.hold(later)
    assert _wait_status(sched, later, {"held"}) == "held"
    sched.release([later])
    assert _wait_status(sched, later, {"queued"}) == "queued"
    sched.cancel(later, verbose=True)
    assert _wait_status(sched, later, {"other", "done"}) in ("other", "done")
    assert _wait_status(sched, ok, {"done"}) == "done"
    assert (tmp_path / "ok" / "out.txt").read_text().strip() == "cores 1"


@pytest.mark.remote
@needs_slurm
def test_live_slurm_submit_status_hold_release_cancel(tmp_path, capsys):
    _live_cycle(Slurm(None), tmp_path, "debug", ["#SBATCH --begin=now+3600"])
    assert "scancel" in capsys.readouterr().out  # verbose=True prints the command


@pytest.mark.remote
@needs_sge
def test_live_sge_submit_status_hold_release_cancel(tmp_path):
    start_at = time.strftime("%Y%m%d%H%M", time.localtime(time.time() + 3600))
    _live_cycle(SGE(None), tmp_path, "all.q", [f"#$ -a {start_at}"])
