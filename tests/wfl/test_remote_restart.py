"""Restarts: SIGKILL the driver at three moments, rerun, compare.

The driver is a real script in a subprocess; it is killed (a) while submitting, (b) while
the jobs run, (c) while results are being gathered. The kill moment is chosen by watching
the jobs database and the local queue's records, so a busy machine only shifts *when* the
kill lands; the assertions hold wherever it lands: the rerun's outputs equal the
operation done serially (bit for bit, through the same file format), and the number of
real submissions equals the number of chunks.
"""

import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from _driver_scripts import executions, subprocess_project, write_slow_scale_driver
from ase.build import bulk
from ase.io import read, write

N_ITEMS = 6


@pytest.fixture
def project(tmp_path):
    return subprocess_project(tmp_path)


def _write_driver(directory, seconds, max_allocations=None):
    """The driver script; ``max_allocations`` packs its chunks (None: one queue job each)."""
    write_slow_scale_driver(
        directory,
        job_name="restart",
        n_items=N_ITEMS,
        seconds=seconds,
        runs_dir=directory / "runs",
        max_allocations=max_allocations,
    )


def _executions(directory) -> dict[int, int]:
    """How many times each item's function ran, from the lines its runs file got."""
    return executions(directory / "runs")


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


def _rerun_gives_the_serial_outputs(workdir, env, reference):
    """Rerun the killed driver to the end; its outputs equal the serial ones bit for bit."""
    rerun = _run_driver(workdir, env)
    assert "DRIVER DONE" in rerun.stdout, rerun.stderr
    out = read(workdir / "out.xyz", ":")
    assert [at.info["id"] for at in out] == list(range(N_ITEMS))
    for got, want in zip(out, reference, strict=True):
        assert (got.positions == want.positions).all()
        assert (got.cell.array == want.cell.array).all()


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

    _rerun_gives_the_serial_outputs(workdir, env, reference)
    assert _queue_submissions(root) == N_ITEMS
    assert _executions(workdir) == dict.fromkeys(range(N_ITEMS), 1)
    with sqlite3.connect(root / "jobs.db") as db:
        rows = db.execute("SELECT status, n_submissions FROM jobs").fetchall()
    assert len(rows) == N_ITEMS
    assert all(status == "processed" and n == 1 for status, n in rows)


def _packed_while_submitting(root):
    return _queue_submissions(root) >= 1  # the first of the two allocations is in the queue


def _packed_while_running(workdir):
    def condition(root):
        started = any((workdir / "runs").iterdir())
        return started and "succeeded" not in _db_statuses(root)

    return condition


@pytest.mark.parametrize("moment", ["while_submitting", "while_running", "while_gathering"])
def test_sigkill_of_a_packed_run_and_rerun_runs_each_item_once(project, reference, moment):
    """Chunks packed into 2 allocations: the driver is killed, the allocations go on; the
    rerun waits for them and packs only what none of them claimed. Every allocation here is
    healthy, so every item runs exactly once."""
    workdir, root, env = project
    _write_driver(workdir, 1.5, max_allocations=2)
    condition = {
        "while_submitting": _packed_while_submitting,
        "while_running": _packed_while_running(workdir),
        "while_gathering": _while_gathering,
    }[moment]
    code = _kill_driver_when(workdir, env, condition, root)
    if code != -signal.SIGKILL:
        pytest.fail(f"driver was not killed (exit code {code}); the kill condition never held")

    _rerun_gives_the_serial_outputs(workdir, env, reference)
    assert _executions(workdir) == dict.fromkeys(range(N_ITEMS), 1)
    with sqlite3.connect(root / "jobs.db") as db:
        statuses = [row[0] for row in db.execute("SELECT status FROM jobs")]
    assert statuses == ["processed"] * N_ITEMS
