"""Scenarios of per-item reuse, shared by the local-queue tests and the live-queue tests.

Executions are counted inside the jobs: the operation appends the item's id to a log file
each time it runs on an item, so "0 items executed again" is a count of real calls, not of
rows or results.
"""

import signal
import sys
from collections import Counter
from pathlib import Path

import cloudpickle
from ase.build import bulk

from wfl.configset import ConfigSet, OutputSpec
from wfl.map import map as wfl_map

# jobs cannot import this test module: ship its functions by value
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def count_and_mark(atoms, log, markers):
    """The operation: logs each execution; fails while ``fail_<id>`` exists in ``markers``,
    returns None (a skipped failure) while ``skip_<id>`` exists,
    and kills its own process once if ``kill_<id>`` exists (the marker is removed first)."""
    import os as _os
    import time as _time
    from pathlib import Path as _Path

    ident = atoms.info["id"]
    with open(log, "a") as fh:
        fh.write(f"{ident}\n")
    _time.sleep(atoms.info.get("sleep", 0.0))
    if (_Path(markers) / f"fail_{ident}").exists():
        raise RuntimeError(f"item {ident} fails while its marker exists")
    if (_Path(markers) / f"skip_{ident}").exists():
        return None  # a failure the operation skips (as skip_failed does): no result
    kill = _Path(markers) / f"kill_{ident}"
    if kill.exists():
        kill.unlink()
        _os.kill(_os.getpid(), signal.SIGKILL)
    atoms.positions[0, 0] += 0.001 * ident
    atoms.info["done"] = True
    atoms.info["energy_like"] = float(atoms.positions.sum())
    return atoms


def configs(ids, sleep=None):
    """One small structure per id, distinct by value."""
    out = []
    for ident in ids:
        at = bulk("Cu", cubic=True)
        at.rattle(0.02, seed=ident)
        at.info["id"] = ident
        if sleep is not None:
            at.info["sleep"] = sleep(ident)
        out.append(at)
    return out


def executions(log: Path) -> Counter:
    """How many times each item id was executed."""
    if not log.exists():
        return Counter()
    return Counter(int(line) for line in log.read_text().split())


def remote_info(sys_name, n_per_job, job_name="items", pool=0, **extra):
    return {
        "sys_name": sys_name,
        "job_name": job_name,
        "resources": {"num_cores": 1, "max_time": "10m"},
        "partial_node": True,
        "num_inputs_per_queued_job": n_per_job,
        "env_vars": [f"WFL_NUM_PYTHON_SUBPROCESSES={pool}", "OMP_NUM_THREADS=1"],
        "timeout": 900,
        **extra,
    }


def run(items, workdir: Path, sys_name, n_per_job, **extra):
    """Map :func:`count_and_mark` over ``items`` as queued jobs; the results as a list."""
    out = wfl_map(
        ConfigSet(items),
        OutputSpec(),
        count_and_mark,
        args=(str(workdir / "executions.log"), str(workdir / "markers")),
        autopara_info={
            "num_inputs_per_python_subprocess": 1,
            "remote_info": remote_info(sys_name, n_per_job, **extra),
        },
    )
    return list(out)


def fingerprint(results):
    """Exact bytes of everything the operation produced, per item id."""
    return {
        at.info["id"]: (at.positions.tobytes(), at.cell.array.tobytes(), at.info["energy_like"])
        for at in results
    }


def prepare(workdir: Path) -> None:
    (workdir / "markers").mkdir(exist_ok=True)


DRIVER = """
import sys
sys.path.insert(0, {scenarios_dir!r})
from pathlib import Path
from _item_reuse_scenarios import configs, run

# the first job's items are quick, the other jobs' slow: the driver is killed after it
# stored the first job's items, while it waits for (or gathers) the others
items = configs(range(12), sleep=lambda i: 0.0 if i < 4 else {slow_s})
results = run(items, Path({workdir!r}), {sys_name!r}, int(sys.argv[1]))
print("DRIVER DONE", len(results))
"""


def stored_items(root: Path) -> int:
    """Items in the project's item store (0 while it does not exist or is locked)."""
    import sqlite3

    try:
        with sqlite3.connect(f"file:{root / 'items.db'}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    except sqlite3.Error:
        return 0


def _write_driver(workdir: Path, sys_name: str, slow_s: float) -> Path:
    """Write the item driver script for these scenarios into ``workdir``; return its path."""
    script = workdir / "item_driver.py"
    script.write_text(
        DRIVER.format(
            scenarios_dir=str(Path(__file__).resolve().parent),
            workdir=str(workdir),
            sys_name=sys_name,
            slow_s=slow_s,
        )
    )
    return script


def kill_driver_mid_gather_then_rerun(workdir: Path, root: Path, sys_name: str, slow_s: float):
    """Run a driver (12 items, 4 per job), SIGKILL it once it stored some items but not all,
    rerun with 3 per job. Returns (stored when killed, the rerun's stdout, its stderr)."""
    import subprocess
    import time

    script = _write_driver(workdir, sys_name, slow_s)
    proc = subprocess.Popen(
        [sys.executable, str(script), "4"],
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    stored_when_killed = None
    deadline = time.monotonic() + 900
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            n = stored_items(root)
            if 4 <= n < 12:
                proc.send_signal(signal.SIGKILL)
                stored_when_killed = n
                break
            time.sleep(0.01)
    finally:
        proc.wait(timeout=120)
    rerun = subprocess.run(
        [sys.executable, str(script), "3"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    return stored_when_killed, rerun.stdout, rerun.stderr


def two_drivers_at_once(workdir: Path, sys_name: str, lookup_delay_s: float):
    """Start two drivers of the same 12 items at once, 4 and 3 per job, each pausing
    ``lookup_delay_s`` between its item lookup and its jobs' claims (the window in which the
    other could look too). Returns both (stdout, stderr)."""
    import os
    import subprocess

    script = _write_driver(workdir, sys_name, 0.0)
    env = dict(os.environ, WFL_TEST_ITEM_LOOKUP_DELAY=str(lookup_delay_s))
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), n_per_job],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n_per_job in ("4", "3")
    ]
    return [proc.communicate(timeout=1200) for proc in procs]
