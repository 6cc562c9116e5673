"""Per-item reuse on a live Slurm (here, and over ssh where configured): a rerun with other
chunking executes nothing again, added inputs only themselves, a failed item only itself, and
a driver SIGKILLed mid-gather loses nothing and runs nothing twice.

Executions are counted inside the jobs (the operation appends to a log file). The store
does not depend on the scheduler, so the other schedulers are not run here (the local queue
runs the same scenarios in tests/wfl/test_item_reuse.py).
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "wfl"))

from _item_reuse_scenarios import (  # noqa: E402 - found through the path set just above
    configs,
    executions,
    fingerprint,
    kill_driver_mid_gather_then_rerun,
    prepare,
    run,
)

from wfl.autoparallelize.remote import QueuedJobsFailed  # noqa: E402

pytestmark = pytest.mark.remote


@pytest.fixture
def workdir(remote_project, sys_config):
    if sys_config["scheduler"] != "slurm":
        pytest.skip(
            f"not applicable: item reuse does not depend on the scheduler; {sys_config['scheduler']} "
            "is covered by the Slurm systems and the local queue's tests"
        )
    work = remote_project.parent / "work"
    prepare(work)
    return work


def _once_per_scheduler(sys_config, selected_systems):
    """Skip a system reached over ssh when the same scheduler runs here in this run: the
    store and the chunking are the same; only the staging of a job's files differs, which
    the failed-item test covers over ssh (its finished items come back with the job)."""
    covered = sys_config.get("host") and any(
        not other.get("host") and other["scheduler"] == sys_config["scheduler"]
        for other in selected_systems.values()
    )
    if covered:
        pytest.skip(f"not applicable: {sys_config['scheduler']} is tested on this machine")


def test_rechunked_and_grown_reruns_on_slurm(workdir, sys_name, sys_config, selected_systems):
    _once_per_scheduler(sys_config, selected_systems)
    log = workdir / "executions.log"
    first = run(configs(range(12)), workdir, sys_name, 4, job_name="items4")
    assert executions(log) == {i: 1 for i in range(12)}
    again = run(configs(range(12)), workdir, sys_name, 3, job_name="items3")
    assert executions(log) == {i: 1 for i in range(12)}, "0 items executed again"
    assert fingerprint(again) == fingerprint(first)
    grown = run(configs([*range(12), 12, 13, 14, 15]), workdir, sys_name, 3, job_name="items3")
    assert executions(log) == {i: 1 for i in range(16)}, "exactly the 4 added items ran"
    assert [at.info["id"] for at in grown] == list(range(16))


def test_failed_item_alone_runs_again_on_slurm(workdir, sys_name):
    log = workdir / "executions.log"
    marker = workdir / "markers" / "fail_5"
    marker.write_text("x")
    with pytest.raises(QueuedJobsFailed, match="item 5 fails"):
        run(configs(range(12)), workdir, sys_name, 4, job_name="itemsf")
    assert executions(log) == {i: 1 for i in range(12)}
    marker.unlink()
    before = executions(log)
    again = run(configs(range(12)), workdir, sys_name, 4, job_name="itemsf")
    assert executions(log) - before == {5: 1}
    assert all(at.info["done"] for at in again)


def test_driver_killed_mid_gather_on_slurm(
    workdir, remote_project, sys_name, sys_config, selected_systems
):
    _once_per_scheduler(sys_config, selected_systems)
    killed_at, out, err = kill_driver_mid_gather_then_rerun(
        workdir, remote_project, sys_name, slow_s=4.0
    )
    assert killed_at is not None, "the driver finished before it could be killed"
    assert "DRIVER DONE 12" in out, err
    assert executions(workdir / "executions.log") == {i: 1 for i in range(12)}
    assert "; 0 to compute in 0 job(s)" in err
