"""Edited code while jobs of the old code are queued or running: the old jobs are cancelled
(they can never be used) and ONE warning names the edited function and the count.

Real local queue, real driver processes: the driver is SIGKILLed while the old jobs run, the
mapped function is edited, and the rerun must cancel them (their processes gone).
"""

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from _driver_scripts import subprocess_project
from ase.io import read

from expyre.localqueue import LocalQueue

DRIVER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from ase.build import bulk
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.map import map as wfl_map
    from slowmod import slow_scale

    configs = []
    for i in range(4):
        at = bulk("Cu", cubic=True)
        at.info["id"] = i
        configs.append(at)
    remote_info = {
        "sys_name": "local", "job_name": "stale", "partial_node": True,
        "resources": {"num_cores": 1, "max_time": "10m"},
        "num_inputs_per_queued_job": 1, "check_interval": 0.3,
        "env_vars": ["WFL_NUM_PYTHON_SUBPROCESSES=0"],
    }
    wfl_map(ConfigSet(configs), OutputSpec("out.xyz"), slow_scale,
            args=(os.path.join(os.path.dirname(os.path.abspath(__file__)), "pids"),),
            autopara_info={"remote_info": remote_info})
    print("DRIVER DONE")
    """
)
SLOWMOD = textwrap.dedent(
    """
    import os, time

    def slow_scale(atoms, pid_dir):
        os.makedirs(pid_dir, exist_ok=True)
        with open(os.path.join(pid_dir, str(os.getpid())), "w") as fh:
            fh.write(str(atoms.info["id"]))
        time.sleep(SECONDS)
        atoms.info["factor"] = FACTOR
        return atoms
    """
)


def _write_slowmod(directory: Path, seconds: float, factor: int) -> None:
    text = SLOWMOD.replace("SECONDS", str(seconds)).replace("FACTOR", str(factor))
    (directory / "slowmod.py").write_text(text)
    for cached in (directory / "__pycache__").glob("slowmod*"):
        cached.unlink()  # same size and mtime second must not reuse the old byte code


@pytest.fixture
def project(tmp_path):
    return subprocess_project(tmp_path)


def _started_jobs(root: Path) -> int:
    try:
        with sqlite3.connect(f"file:{root / 'jobs.db'}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'started'").fetchone()[0]
    except sqlite3.Error:
        return 0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is gone for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def test_edited_function_cancels_old_running_jobs_with_one_warning(project):
    workdir, root, env = project
    (workdir / "driver.py").write_text(DRIVER)
    _write_slowmod(workdir, seconds=300, factor=1)
    first = subprocess.Popen(
        [sys.executable, "driver.py"], cwd=workdir, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not (
            _started_jobs(root) >= 2 and len(list((workdir / "pids").glob("*"))) >= 2
        ):
            assert first.poll() is None, "the driver ended before its jobs ran"
            time.sleep(0.2)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    old_pids = [int(p.name) for p in (workdir / "pids").iterdir()]
    assert len(old_pids) >= 2 and all(_alive(pid) for pid in old_pids)
    queue = LocalQueue(root / "localqueue" / "local")
    old_qids = [qid for qid, _ in queue.list()]
    assert len(old_qids) == 4

    _write_slowmod(workdir, seconds=0.1, factor=2)
    rerun = subprocess.run(
        [sys.executable, "driver.py"], cwd=workdir, env=env,
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr
    warnings = [line for line in rerun.stderr.splitlines() if "code changed:" in line]
    assert len(warnings) == 1, rerun.stderr
    assert "slowmod:slow_scale" in warnings[0]
    assert "4 earlier job(s)" in warnings[0]
    assert "4 of them were still queued or running and were cancelled" in warnings[0]
    assert not [pid for pid in old_pids if _alive(pid)]  # the old jobs' processes are gone
    assert all(queue.state(qid) == "cancelled" for qid in old_qids)
    assert sorted(at.info["factor"] for at in read(workdir / "out.xyz", ":")) == [2, 2, 2, 2]
    with sqlite3.connect(root / "jobs.db") as db:
        stale = db.execute(
            "SELECT queue_state, json_extract(info, '$.cancel_pending') FROM jobs"
            " WHERE status = 'stale'"
        ).fetchall()
    assert stale == [("cancelled", 0)] * 4
