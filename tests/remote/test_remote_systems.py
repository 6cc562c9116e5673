"""End to end on real queues: every system of the test config (see conftest.py).

In CI these are: ``local`` (embedded queue), ``slurm`` and ``sge`` on this machine, and
``remote_slurm`` = the same Slurm through ssh to 127.0.0.1 with a separate run directory.
Run with ``pytest --runremote tests/remote`` after ci/start-*.sh and ci/write-test-config.sh.
"""

import json
import os
import time
from pathlib import Path

import pytest
from remote_jobs import job_environment, sleep_for, square

import wfl  # noqa: F401 - registers itself: the preflight then checks it on each system
from expyre.func import ExPyRe, RemoteJobError
from expyre.poll import refresh_jobs, wait_for_jobs
from expyre.preflight import check_system
from expyre.system import System, get_system

pytestmark = pytest.mark.remote

ONE_CORE = {"num_cores": 1, "max_time": "10m"}
HOLD_LINE = {"slurm": "#SBATCH --hold", "sge": "#$ -h", "pbs": "#PBS -h"}
CI_SSHD_LOG = Path("/var/lib/ci-sshd/sshd.log")
HOSTILE = "v a l;touch PWNED_env $(touch PWNED_subst) `touch PWNED_tick` 'q' \"dq\""


class StatusSpy:
    """Counts System.queue_states calls and the commands System.run executes inside them."""

    def __init__(self, monkeypatch):
        self.status_calls = 0
        self.commands_in_status = 0
        self._inside = False
        real_status, real_run = System.queue_states, System.run
        spy = self

        def status(system, remote_ids):
            spy.status_calls += 1
            spy._inside = True
            try:
                return real_status(system, remote_ids)
            finally:
                spy._inside = False

        def run(system, argv, **kw):
            if spy._inside:
                spy.commands_in_status += 1
            return real_run(system, argv, **kw)

        monkeypatch.setattr(System, "queue_states", status)
        monkeypatch.setattr(System, "run", run)


def _wait_until(jobs, predicate, timeout=180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        refresh_jobs(jobs)
        if predicate():
            return True
        time.sleep(1)
    return False


def test_preflight_passes(remote_project, sys_name):
    report = check_system(get_system(sys_name), force=True)
    assert "error" not in report["modules"]["expyre"]
    assert "error" not in report["modules"]["wfl"]


def test_twenty_jobs_with_one_status_call_per_poll(remote_project, sys_name, monkeypatch):
    spy = StatusSpy(monkeypatch)
    jobs = [ExPyRe(f"sq{i}", function=square, args=[i]) for i in range(20)]
    for job in jobs:
        job.start(ONE_CORE, partial_node=True)
    polls = []
    done = list(wait_for_jobs(jobs, timeout=600, on_progress=lambda c, e: polls.append(c)))
    assert {j.id: j.get_results(timeout=0)[0] for j in done} == {
        j.id: i * i for i, j in enumerate(jobs)
    }
    assert polls[-1]["succeeded"] == 20
    assert spy.status_calls == len(polls)
    assert spy.commands_in_status == len(polls)  # ONE scheduler command per poll


def test_multicore_request_and_hostile_values_reach_the_job(
    remote_project, sys_name, sys_config, monkeypatch
):
    cores = max(p["num_cores"] for p in sys_config["partitions"].values())
    monkeypatch.setenv("XPR_HOSTILE", HOSTILE)
    names = [
        "EXPYRE_NUM_CORES_PER_NODE",
        "EXPYRE_NCORES_PER_NODE",
        "SLURM_NTASKS_PER_NODE",
        "NSLOTS",
        "XPR_HOSTILE",
    ]
    job = ExPyRe(
        "cores a b;$(touch PWNED_name)'x'",
        function=job_environment,
        args=[names],
        env_vars=["XPR_HOSTILE"],
    )
    job.start({"num_nodes": 1, "max_time": "10m"})
    (env, cwd), _, _ = job.get_results(timeout=600)
    assert env["EXPYRE_NUM_CORES_PER_NODE"] == str(cores)
    assert env["EXPYRE_NCORES_PER_NODE"] == str(cores)
    if sys_config["scheduler"] == "slurm":
        assert env["SLURM_NTASKS_PER_NODE"] == str(cores)
    if sys_config["scheduler"] == "sge":
        assert env["NSLOTS"] == str(cores)
    assert env["XPR_HOSTILE"] == HOSTILE
    assert cwd == job.row["remote_dir"]
    if sys_config.get("host"):
        assert cwd.startswith(sys_config["rundir"]) and cwd != str(job.stage_dir)
    for where in (Path(cwd), job.stage_dir, Path.cwd(), Path.home()):
        assert not list(where.glob("PWNED*")), where


def test_time_limit_cancel_and_hold_are_detected(
    remote_project, sys_name, sys_config, selected_systems
):
    """A job over its time limit dies as "timeout", a scancel/qdel'ed one as "cancelled", and
    a held job is shown held.

    The time-limit check (about 70 s on Slurm, whose shortest limit is one minute) is left out
    for a system reached over ssh when the same scheduler is also tested on this machine in
    this run: it would test the queue again, not the ssh path.
    """
    scheduler = sys_config["scheduler"]
    system = get_system(sys_name)
    covered = sys_config.get("host") and any(
        not other.get("host") and other["scheduler"] == scheduler
        for other in selected_systems.values()
    )
    watched = []
    if not covered:
        # the time limit is 5 s; Slurm rounds it up to its minimum of one minute
        over = ExPyRe("over_time", function=sleep_for, args=[600])
        watched.append(over.start({"num_cores": 1, "max_time": 5}, partial_node=True))
    victim = ExPyRe("victim", function=sleep_for, args=[601]).start(ONE_CORE, partial_node=True)
    watched.append(victim)
    held = None
    if scheduler in HOLD_LINE:
        held = ExPyRe("held", function=sleep_for, args=[602])
        held.start(ONE_CORE, partial_node=True, header_extra=[HOLD_LINE[scheduler]])

    assert _wait_until([victim], lambda: victim.status == "started"), victim.row
    system.cancel([victim.remote_id])  # scancel / qdel behind expyre's back
    if held is not None:
        refresh_jobs([held])
        assert held.status == "submitted" and held.row["queue_state"] == "held"

    done = {j.id for j in wait_for_jobs(watched, timeout=300)}
    assert done == {j.id for j in watched}
    assert victim.row["status"] == "died" and victim.row["queue_state"] == "cancelled"
    if not covered:
        assert over.row["status"] == "died" and over.row["queue_state"] == "timeout"
        with pytest.raises(RemoteJobError) as err:
            over.get_results(timeout=0)
        assert err.value.queue_state == "timeout"
    if held is not None:
        held.cancel()
        assert held.status == "died"


def test_partition_choice_is_honoured(remote_project, sys_name, sys_config):
    if sys_config["scheduler"] != "slurm" or "debug" not in sys_config["partitions"]:
        pytest.skip("not applicable: needs a Slurm system with a 'debug' partition")
    system = get_system(sys_name)
    job = ExPyRe("in_debug", function=square, args=[3])
    job.start({"num_cores": 1, "max_time": "10m", "partitions": "debug"}, partial_node=True)
    partition = system.run(
        ["squeue", "-h", "-t", "all", "-j", job.remote_id, "-o", "%P"], what="read partition"
    ).stdout.strip()
    assert partition == "debug"
    assert job.get_results(timeout=300)[0] == 9


def test_remote_polls_share_one_ssh_connection(remote_project, sys_name, sys_config, monkeypatch):
    if not sys_config.get("host"):
        pytest.skip("not applicable: system is not reached over ssh")
    system = get_system(sys_name)
    assert type(system.transport).__name__ == "SshTransport"
    job = ExPyRe("sleeper", function=sleep_for, args=[120]).start(ONE_CORE, partial_node=True)
    refresh_jobs([job])  # the connection exists from here on
    spy = StatusSpy(monkeypatch)
    log_readable = os.access(CI_SSHD_LOG, os.R_OK)
    before = CI_SSHD_LOG.read_text().count("Accepted publickey") if log_readable else 0
    for _ in range(20):
        refresh_jobs([job])
    assert spy.commands_in_status == 20
    if log_readable:
        time.sleep(0.5)
        assert CI_SSHD_LOG.read_text().count("Accepted publickey") - before <= 1
    assert job.row["remote_dir"].startswith(sys_config["rundir"])
    assert job.row["remote_dir"] != str(job.stage_dir)
    job.cancel()


def test_two_hundred_live_jobs_one_status_call_per_poll(
    remote_project, sys_name, sys_config, monkeypatch
):
    scheduler = sys_config["scheduler"]
    if scheduler not in HOLD_LINE or sys_config.get("host"):
        pytest.skip("not applicable: needs a batch scheduler on this machine (held jobs)")
    system = get_system(sys_name)
    jobs = [ExPyRe(f"many{i}", function=square, args=[i]) for i in range(200)]
    for job in jobs:  # held: 200 live jobs that do not swamp a 2-core machine
        job.start(ONE_CORE, partial_node=True, header_extra=[HOLD_LINE[scheduler]])
    try:
        spy = StatusSpy(monkeypatch)
        for _ in range(3):
            refresh_jobs(jobs)
        assert spy.status_calls == 3 and spy.commands_in_status == 3
        assert {j.row["queue_state"] for j in jobs} == {"held"}
    finally:
        system.cancel([j.remote_id for j in jobs])


def test_rundir_with_spaces_and_semicolons_over_ssh(remote_project, sys_name, sys_config):
    if not sys_config.get("host"):
        pytest.skip("not applicable: system is not reached over ssh")
    rundir = sys_config["rundir"] + "/run dir;touch PWNED"
    config = json.loads((remote_project / "config.json").read_text())
    config["systems"][sys_name]["rundir"] = rundir
    (remote_project / "config.json").write_text(json.dumps(config))
    job = ExPyRe("spaced", function=job_environment, args=[["EXPYRE_NUM_CORES"]])
    job.start(ONE_CORE, partial_node=True)
    (env, cwd), _, _ = job.get_results(timeout=300)
    assert env == {"EXPYRE_NUM_CORES": "1"}
    # each project's jobs run in its own directory under the rundir
    project_rundir = get_system(sys_name).project_rundir(job._db.project_id)
    assert project_rundir.startswith(f"{rundir}/")
    assert cwd == f"{project_rundir}/{job.id}"
    assert not list(Path(sys_config["rundir"]).glob("PWNED*"))

    # what no scheduler header can carry is refused before anything is submitted
    config["systems"][sys_name]["rundir"] = sys_config["rundir"] + "/$(touch PWNED)"
    (remote_project / "config.json").write_text(json.dumps(config))
    bad = ExPyRe("dollar", function=square, args=[5])
    with pytest.raises(ValueError, match=r"contains '\$'.*rundir"):
        bad.start(ONE_CORE, partial_node=True)
    assert bad.remote_id is None
