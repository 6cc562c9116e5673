"""Benchmark: SIGKILL the driver at random moments of a queued run, rerun, count.

    .venv/bin/python bench/fault_injection.py [--trials 50] [--items 4] [--systems local,slurm]
                                              [--seed S] [--workdir DIR] [--packing K|array]

Each trial runs the same small workflow (``wfl.map`` over ITEMS structures, one queued job
per item) in a fresh project, SIGKILLs the driver at a moment drawn uniformly from the
duration of an uninterrupted run (measured first, per system), then reruns the driver to
completion. Every item appends one line to its own file *inside the job* when it runs, so
executions are counted where they happen, not in the jobs database. Per system the table
shows: trials, how many kills landed before the driver finished, reruns that produced the
right output, duplicates (executions beyond the first, summed over items) and losses
(items never executed, or missing or wrong in the output). Target: 0 duplicates, 0 losses,
every rerun correct. ``--packing K`` packs the jobs into at most K allocations
(``max_allocations``), ``--packing array`` into one job array: the kill then also lands
while chunks are being packed, claimed or run by allocations that outlive the driver.
Slurm needs the CI daemon (``bash ci/start-slurm.sh``); a system whose
daemon is not running is skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

DRIVER = textwrap.dedent(
    """
    import json, os, sys
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path.insert(0, here)
    from ase.build import bulk
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.map import map as wfl_map
    from faultmod import counted_scale

    configs = []
    for i in range(int(sys.argv[2])):
        at = bulk("Cu", cubic=True)
        at.info["id"] = i
        configs.append(at)
    remote_info = {
        "sys_name": sys.argv[1], "job_name": "fault", "partial_node": True,
        "resources": {"num_cores": 1, "max_time": "10m"},
        "num_inputs_per_queued_job": 1, "check_interval": 0.2,
        "env_vars": ["WFL_NUM_PYTHON_SUBPROCESSES=0"],
    }
    packing = sys.argv[3] if len(sys.argv) > 3 else "none"
    if packing == "array":
        remote_info["job_array"] = True
    elif packing != "none":
        remote_info["max_allocations"] = int(packing)
    wfl_map(ConfigSet(configs), OutputSpec("out.xyz"), counted_scale,
            args=(os.path.join(here, "runs"),), autopara_info={"remote_info": remote_info})
    print("DRIVER DONE")
    """
)
FAULTMOD = textwrap.dedent(
    """
    import os, time

    def counted_scale(atoms, runs_dir):
        os.makedirs(runs_dir, exist_ok=True)
        with open(os.path.join(runs_dir, str(atoms.info["id"])), "a") as fh:
            fh.write(f"{os.getpid()}\\n")
        time.sleep(0.3)
        atoms.info["scaled"] = 1.5 * atoms.info["id"]
        return atoms
    """
)
TIMEOUT_S = 900.0


def _system_config(name: str) -> dict:
    if name == "local":
        return {
            "host": None,
            "scheduler": "local",
            "partitions": {"local": {"num_cores": 2, "max_time": None}},
        }
    if name == "slurm":
        return {
            "host": None,
            "scheduler": "slurm",
            "partitions": {"standard": {"num_cores": 2, "max_time": None}},
        }
    raise SystemExit(f"unknown system {name!r}: choose from local, slurm")


def _available(name: str) -> str | None:
    """None if the system can run jobs here, else why not."""
    if name == "slurm":
        if shutil.which("sbatch") is None:
            return "sbatch not found"
        if subprocess.run(["squeue"], capture_output=True).returncode != 0:
            return "squeue fails: is slurmctld running? (bash ci/start-slurm.sh)"
    return None


def _project(base: Path, system: str) -> tuple[Path, dict]:
    work = Path(tempfile.mkdtemp(prefix=f"trial-{system}-", dir=base))
    root = work / "_expyre"
    root.mkdir()
    (root / "config.json").write_text(json.dumps({"systems": {system: _system_config(system)}}))
    (work / "driver.py").write_text(DRIVER)
    (work / "faultmod.py").write_text(FAULTMOD)
    env = dict(os.environ, EXPYRE_ROOT=str(root), HOME=str(work), EXPYRE_DIED_GRACE="5")
    for var in ("WFL_EXPYRE_INFO", "EXPYRE_SYS", "WFL_PROGRESS"):
        env.pop(var, None)
    return work, env


PACKING = ["none"]  # --packing, set in main()


def _start(work: Path, env: dict, system: str, items: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "driver.py", system, str(items), PACKING[0]],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _outcome(work: Path, items: int) -> tuple[int, int, bool]:
    """(duplicates, losses, output correct) of a finished trial."""
    runs = {}
    for i in range(items):
        path = work / "runs" / str(i)
        runs[i] = len(path.read_text().splitlines()) if path.exists() else 0
    duplicates = sum(max(0, n - 1) for n in runs.values())
    correct = False
    lost = {i for i, n in runs.items() if n == 0}
    try:
        from ase.io import read

        written = read(work / "out.xyz", ":")
        got = {int(at.info["id"]): at.info.get("scaled") for at in written}
        lost |= {i for i in range(items) if got.get(i) != 1.5 * i}
        correct = len(written) == items and not lost
    except Exception:  # noqa: BLE001 - a missing or unreadable output is a failed rerun
        lost = set(range(items))
    return duplicates, len(lost), correct


def run_system(system: str, trials: int, items: int, rng: random.Random, base: Path) -> dict:
    """All trials on one system; returns the table row."""
    work, env = _project(base, system)
    t0 = time.monotonic()
    clean = _start(work, env, system, items)
    out, err = clean.communicate(timeout=TIMEOUT_S)
    duration = time.monotonic() - t0
    if clean.returncode != 0 or "DRIVER DONE" not in out:
        raise SystemExit(f"{system}: the uninterrupted run failed:\n{err}")
    dup, lost, ok = _outcome(work, items)
    if (dup, lost, ok) != (0, 0, True):
        raise SystemExit(f"{system}: the uninterrupted run is wrong: {dup=} {lost=} {ok=}")
    shutil.rmtree(work, ignore_errors=True)
    row = {"system": system, "trials": 0, "killed": 0, "correct": 0, "duplicates": 0,
           "losses": 0, "clean_s": duration}  # fmt: skip
    for trial in range(trials):
        work, env = _project(base, system)
        delay = rng.uniform(0.0, duration)
        driver = _start(work, env, system, items)
        try:
            driver.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            driver.send_signal(signal.SIGKILL)
            row["killed"] += 1
        driver.communicate()
        rerun = _start(work, env, system, items)
        out, err = rerun.communicate(timeout=TIMEOUT_S)
        dup, lost, ok = _outcome(work, items)
        ok = ok and rerun.returncode == 0 and "DRIVER DONE" in out
        row["trials"] += 1
        row["correct"] += ok
        row["duplicates"] += dup
        row["losses"] += lost
        if not ok or dup or lost:
            print(
                f"  {system} trial {trial}: kill at {delay:.2f} s -> rerun rc={rerun.returncode} "
                f"duplicates={dup} losses={lost}; kept in {work}\n{err[-2000:]}",
                file=sys.stderr,
            )
        else:
            shutil.rmtree(work, ignore_errors=True)
        print(
            f"  {system}: trial {trial + 1}/{trials} kill at {delay:.2f} s "
            f"{'ok' if ok and not dup and not lost else 'WRONG'}",
            file=sys.stderr,
            flush=True,
        )
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--items", type=int, default=4)
    parser.add_argument("--systems", default="local,slurm")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument(
        "--workdir", default=None, help="where trial projects go (must be visible to the queue)"
    )
    parser.add_argument(
        "--packing", default="none", help="none, K (max_allocations=K) or array (job_array)"
    )
    args = parser.parse_args()
    PACKING[0] = args.packing
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    rng = random.Random(seed)
    rows, notes = [], []
    # trials that went wrong are kept for inspection, the rest removed
    base = Path(tempfile.mkdtemp(prefix="fault-injection-", dir=args.workdir))
    for system in args.systems.split(","):
        why = _available(system)
        if why:
            notes.append(f"{system}: skipped ({why})")
            continue
        rows.append(run_system(system, args.trials, args.items, rng, base))
    if not any(base.iterdir()):
        base.rmdir()
    print(f"fault injection: driver SIGKILLed at a random moment, then rerun (seed {seed}, "
          f"{args.items} items, one job per item, packing {args.packing})")  # fmt: skip
    header = ("system", "trials", "killed", "reruns correct", "duplicates", "losses", "clean run")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print(
            f"| {r['system']} | {r['trials']} | {r['killed']} | {r['correct']}/{r['trials']} "
            f"| {r['duplicates']} | {r['losses']} | {r['clean_s']:.1f} s |"
        )
    for note in notes:
        print(note)
    bad = any(r["duplicates"] or r["losses"] or r["correct"] != r["trials"] for r in rows)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
