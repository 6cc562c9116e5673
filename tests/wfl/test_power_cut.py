"""A power cut during a queued run: every process of it SIGKILLed at once, then a plain rerun.

What a reboot or the kernel's out-of-memory killer does to a run on the local queue: the
driver, the local queue's launchers and the running jobs (with their pool workers) all die
at the same instant, with nothing written on the way out. With default settings the plain
rerun of the same script must finish with correct results: jobs that died with the machine
(never started, or killed without a Python exception) are resubmitted, and a job that had
finished before the cut is never run again.

Five rounds, each killing at a random moment (seeded, so a failure names its moment).
"""

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _driver_scripts import executions, subprocess_project, write_slow_scale_driver
from ase.io import read

N_ITEMS = 6
SECONDS_PER_ITEM = 2.0


@pytest.fixture
def project(tmp_path):
    # default settings: only the project location and a private HOME are set
    workdir, root, env = subprocess_project(tmp_path, died_grace_s=None)
    write_slow_scale_driver(
        workdir,
        job_name="cut",
        n_items=N_ITEMS,
        seconds=SECONDS_PER_ITEM,
        runs_dir=workdir / "runs",
    )
    return workdir, root, env


def _processes_of(directory: Path) -> set[int]:
    """Pids of every process working in ``directory`` (cwd) or naming it on its command line."""
    mine = {os.getpid(), os.getppid()}
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            cwd = os.readlink(entry / "cwd")
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cwd.startswith(str(directory)) or str(directory) in cmdline:
            found.add(int(entry.name))
    return found


def _power_cut(directory: Path, driver: subprocess.Popen) -> int:
    """SIGKILL the driver and every process of the run, as fast as possible; returns how many."""
    killed = set()
    for _ in range(50):  # until no process of the run is left (a launcher may be mid-spawn)
        pids = _processes_of(directory) | ({driver.pid} if driver.poll() is None else set())
        pids -= killed
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        killed |= pids
        time.sleep(0.05)
    driver.wait(timeout=60)
    return len(killed)


def _finished_jobs(root: Path) -> dict[str, int]:
    """name -> n_submissions of jobs whose result was recorded before the cut."""
    import pickle

    with sqlite3.connect(root / "jobs.db", timeout=30) as db:
        rows = db.execute("SELECT name, stage_dir, n_submissions FROM jobs").fetchall()
    done = {}
    for name, stage_dir, n in rows:
        result = Path(stage_dir, "_expyre_result.pkl")
        if result.exists() and pickle.loads(result.read_bytes()).get("ok"):
            done[name] = n
    return done


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2, 3, 4, 5])
def test_power_cut_then_plain_rerun_recovers(project, seed):
    workdir, root, env = project
    moment = random.Random(seed).uniform(0.5, 9.0)  # s after the driver starts
    driver = subprocess.Popen(
        [sys.executable, "driver.py"],
        cwd=workdir,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    time.sleep(moment)
    if driver.poll() is not None:
        pytest.fail(f"driver ended (code {driver.returncode}) before the cut at {moment:.1f} s")
    n_killed = _power_cut(workdir, driver)
    assert not (workdir / "out.xyz").exists()
    assert _processes_of(workdir) == set(), "a process of the run survived the cut"
    finished = _finished_jobs(root) if (root / "jobs.db").exists() else {}
    runs_before = executions(workdir / "runs")

    rerun = subprocess.run(
        [sys.executable, "driver.py"],
        cwd=workdir, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    context = f"cut at {moment:.1f} s killed {n_killed} processes; finished before: {finished}"
    assert "DRIVER DONE" in rerun.stdout, f"{context}\n{rerun.stderr[-3000:]}"

    out = read(workdir / "out.xyz", ":")
    assert [at.info["id"] for at in out] == list(range(N_ITEMS)), context
    assert all(at.info["scaled"] for at in out), context
    with sqlite3.connect(root / "jobs.db") as db:
        rows = dict(db.execute("SELECT name, n_submissions FROM jobs").fetchall())
    assert len(rows) == N_ITEMS, context
    # a job finished before the cut is never submitted or run again
    for name, submissions in finished.items():
        assert rows[name] == submissions, f"{name} resubmitted; {context}"
        item = int(name.rsplit("_", 1)[1])
        assert executions(workdir / "runs")[item] == runs_before[item], (
            f"item {item} rerun; {context}"
        )
