"""``resubmit_killed_jobs`` against a real Slurm: a job killed at its time limit, and a job
cancelled with a real ``scancel``, are submitted again and their items complete.

The mapped function sleeps far past the limit on its first attempt only (a marker file,
on this machine's filesystem, counts the attempts), so the second submission finishes.
Only Slurm systems on this machine are exercised: the marker files must be visible to the
job, and a Slurm reached over ssh would test the same queue again.
"""

import sys
import threading
import time

import cloudpickle
import pytest
from ase.build import bulk

from expyre.func import jobs_db
from expyre.system import get_system
from wfl.configset import ConfigSet, OutputSpec
from wfl.map import map as wfl_map

pytestmark = pytest.mark.remote

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _slow_on_first_attempt(atoms, marker_dir):
    import time
    from pathlib import Path

    marker = Path(marker_dir) / "attempts"
    attempts = len(marker.read_text()) + 1 if marker.exists() else 1
    marker.write_text("x" * attempts)
    if attempts == 1:
        time.sleep(900)  # far past the time limit; killed by the queue
    atoms.info["attempts"] = attempts
    return atoms


def _needs_local_slurm(sys_config):
    if sys_config["scheduler"] != "slurm" or sys_config.get("host"):
        pytest.skip("not applicable: needs a Slurm system on this machine (no ssh host)")


def _run(sys_name, markers, max_time):
    info = {
        "sys_name": sys_name,
        "job_name": "killed_once",
        "resources": {"num_cores": 1, "max_time": max_time},
        "partial_node": True,
        "num_inputs_per_queued_job": 1,
        "resubmit_killed_jobs": True,
        "env_vars": ["WFL_NUM_PYTHON_SUBPROCESSES=0"],
    }
    out = wfl_map(
        ConfigSet([bulk("Cu", cubic=True)]),
        OutputSpec(),
        _slow_on_first_attempt,
        args=(str(markers),),
        autopara_info={"remote_info": info},
    )
    return list(out)


def test_job_killed_at_its_slurm_time_limit_is_resubmitted(
    remote_project, sys_name, sys_config, tmp_path
):
    _needs_local_slurm(sys_config)
    markers = tmp_path / "markers"
    markers.mkdir()
    # 5 s: Slurm rounds the limit up to its minimum of one minute
    out = _run(sys_name, markers, 5)
    assert [at.info["attempts"] for at in out] == [2]
    assert [r["n_submissions"] for r in jobs_db().select()] == [2]


def _scancel_when_running(sys_name, marker, stop):
    """Cancel the job once its function runs, with the queue's own command (scancel)."""
    db = jobs_db()
    while not stop.is_set():
        running = [r for r in db.select(statuses=["started"]) if r["remote_id"]]
        if running and marker.exists():  # the first attempt is inside the function
            get_system(sys_name).cancel([running[0]["remote_id"]])
            return
        time.sleep(0.5)


def test_job_cancelled_with_scancel_is_resubmitted(remote_project, sys_name, sys_config, tmp_path):
    _needs_local_slurm(sys_config)
    markers = tmp_path / "markers"
    markers.mkdir()
    stop = threading.Event()
    canceller = threading.Thread(
        target=_scancel_when_running, args=(sys_name, markers / "attempts", stop)
    )
    canceller.start()
    try:
        out = _run(sys_name, markers, "30m")
    finally:
        stop.set()
        canceller.join()
    assert [at.info["attempts"] for at in out] == [2]
    assert [r["n_submissions"] for r in jobs_db().select()] == [2]
