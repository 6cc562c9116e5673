"""Restarts: SIGKILL the driver at three moments, rerun, compare.

The driver is a real script in a subprocess; it is killed (a) while submitting, (b) while
the jobs run, (c) while results are being gathered. The kill moment is chosen by watching
the jobs database and the local queue's records, so a busy machine only shifts *when* the
kill lands; the assertions hold wherever it lands: the rerun's outputs equal the
operation done serially (bit for bit, through the same file format), and the number of
real submissions equals the number of chunks.
"""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest
from ase.build import bulk
from ase.io import read, write

DRIVER = textwrap.dedent(
    """
    import sys, time
    from ase.build import bulk
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.map import map as wfl_map

    def slow_scale(atoms, seconds):
        time.sleep(seconds)
        atoms.set_cell(atoms.cell * 1.01, scale_atoms=True)
        atoms.info["scaled"] = True
        return atoms

    configs = []
    for i in range(N_ITEMS):
        at = bulk("Cu", cubic=True)
        at.rattle(0.05, seed=i)
        at.info["id"] = i
        configs.append(at)
    remote_info = {
        "sys_name": "local", "job_name": "restart", "partial_node": True,
        "resources": {"num_cores": 1, "max_time": "10m"},
        "num_inputs_per_queued_job": 1, "check_interval": 0.3,
        "env_vars": ["WFL_NUM_PYTHON_SUBPROCESSES=0"],
    }
    wfl_map(ConfigSet(configs), OutputSpec("out.xyz"), slow_scale, args=(SECONDS,),
            autopara_info={"remote_info": remote_info})
    print("DRIVER DONE")
    """
)
N_ITEMS = 6


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "_expyre"
    root.mkdir()
    (root / "config.json").write_text(
        json.dumps(
            {
                "systems": {
                    "local": {
                        "host": None,
                        "scheduler": "local",
                        "partitions": {"local": {"num_cores": 2, "max_time": None}},
                    }
                }
            }
        )
    )
    env = dict(os.environ, EXPYRE_ROOT=str(root), HOME=str(tmp_path), EXPYRE_DIED_GRACE="5")
    for var in ("WFL_EXPYRE_INFO", "EXPYRE_SYS", "WFL_PROGRESS"):
        env.pop(var, None)
    return tmp_path, root, env


def _write_driver(directory, seconds):
    text = DRIVER.replace("N_ITEMS", str(N_ITEMS)).replace("SECONDS", str(seconds))
    (directory / "driver.py").write_text(text)


def _db_statuses(root):
    try:
        with sqlite3.connect(f"file:{root / 'jobs.db'}?mode=ro", uri=True, timeout=5) as db:
            return [r[0] for r in db.execute("SELECT status FROM jobs")]
    except sqlite3.Error:
        return []


def _queue_submissions(root):
    """Real submissions to the local queue: its job-id counter."""
    counter = root / "localqueue" / "local" / "counter.lock"
    return int(counter.read_text().strip() or 0) if counter.exists() else 0


def _run_driver(workdir, env, timeout=600):
    return subprocess.run(
        [sys.executable, "driver.py"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _kill_driver_when(workdir, env, condition, root, timeout=300):
    proc = subprocess.Popen(
        [sys.executable, "driver.py"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if condition(root):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
    finally:
        proc.wait(timeout=60)
    return proc.returncode


def _while_submitting(root):
    return _queue_submissions(root) >= 2


def _while_running(root):
    return _queue_submissions(root) >= N_ITEMS and "succeeded" not in _db_statuses(root)


def _while_gathering(root):
    # a job is marked processed as soon as its results are kept (its items stored): some
    # finished and not all gathered is the middle of gathering
    statuses = _db_statuses(root)
    finished = statuses.count("succeeded") + statuses.count("processed")
    return finished >= 2 and statuses.count("processed") < N_ITEMS


@pytest.fixture
def reference(tmp_path):
    """Outputs of the driver's operation done serially here, through the same file format."""
    configs = []
    for i in range(N_ITEMS):
        at = bulk("Cu", cubic=True)
        at.rattle(0.05, seed=i)
        at.info["id"] = i
        at.set_cell(at.cell * 1.01, scale_atoms=True)
        configs.append(at)
    write(tmp_path / "serial.xyz", configs)
    return read(tmp_path / "serial.xyz", ":")


@pytest.mark.parametrize(
    "moment, seconds",
    [(_while_submitting, 1.0), (_while_running, 3.0), (_while_gathering, 1.5)],
    ids=["while_submitting", "while_running", "while_gathering"],
)
def test_sigkill_and_rerun_gives_same_outputs_and_no_duplicate_submission(
    project, reference, moment, seconds
):
    workdir, root, env = project
    _write_driver(workdir, seconds)
    code = _kill_driver_when(workdir, env, moment, root)
    assert not (workdir / "out.xyz").exists()
    if code != -signal.SIGKILL:  # the driver finished before the moment came: nothing to test
        pytest.fail(f"driver was not killed (exit code {code}); the kill condition never held")

    rerun = _run_driver(workdir, env)
    assert "DRIVER DONE" in rerun.stdout, rerun.stderr
    out = read(workdir / "out.xyz", ":")
    assert [at.info["id"] for at in out] == list(range(N_ITEMS))
    for got, want in zip(out, reference, strict=True):
        assert (got.positions == want.positions).all()
        assert (got.cell.array == want.cell.array).all()
    assert _queue_submissions(root) == N_ITEMS
    with sqlite3.connect(root / "jobs.db") as db:
        rows = db.execute("SELECT status, n_submissions FROM jobs").fetchall()
    assert len(rows) == N_ITEMS
    assert all(status == "processed" and n == 1 for status, n in rows)
