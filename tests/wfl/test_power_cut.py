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
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from ase.io import read

N_ITEMS = 6
SECONDS_PER_ITEM = 2.0

DRIVER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from ase.build import bulk
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.map import map as wfl_map

    RUNS = Path(sys.argv[1])

    def slow_scale(atoms, seconds):
        # one line per start of this item: a finished item must never start again
        with open(RUNS / f"item_{atoms.info['id']}", "a") as fh:
            fh.write(f"{os.getpid()}\\n")
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
        "sys_name": "local", "job_name": "cut", "partial_node": True,
        "resources": {"num_cores": 1, "max_time": "10m"},
        "num_inputs_per_queued_job": 1, "check_interval": 0.3,
        "env_vars": ["WFL_NUM_PYTHON_SUBPROCESSES=0"],
    }
    wfl_map(ConfigSet(configs), OutputSpec("out.xyz"), slow_scale, args=(SECONDS,),
            autopara_info={"remote_info": remote_info})
    print("DRIVER DONE")
    """
)


@pytest.fixture
def project(tmp_path):
    root = tmp_path / "_expyre"
    root.mkdir()
    partition = {"num_cores": 2, "max_time": None}
    config = {"systems": {"local": {"host": None, "scheduler": "local",
                                    "partitions": {"local": partition}}}}  # fmt: skip
    (root / "config.json").write_text(json.dumps(config))
    (tmp_path / "runs").mkdir()
    text = DRIVER.replace("N_ITEMS", str(N_ITEMS)).replace("SECONDS", str(SECONDS_PER_ITEM))
    (tmp_path / "driver.py").write_text(text)
    # default settings: only the project location and a private HOME are set
    env = dict(os.environ, EXPYRE_ROOT=str(root), HOME=str(tmp_path))
    for var in ("WFL_EXPYRE_INFO", "EXPYRE_SYS", "WFL_PROGRESS", "EXPYRE_DIED_GRACE"):
        env.pop(var, None)
    return tmp_path, root, env


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


def _runs(workdir: Path) -> dict[int, int]:
    return {
        int(p.name.split("_")[1]): len(p.read_text().split()) for p in (workdir / "runs").iterdir()
    }


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
        [sys.executable, "driver.py", str(workdir / "runs")],
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
    runs_before = _runs(workdir)

    rerun = subprocess.run(
        [sys.executable, "driver.py", str(workdir / "runs")],
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
        assert _runs(workdir)[item] == runs_before[item], f"item {item} rerun; {context}"
