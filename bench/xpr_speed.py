"""How fast ``xpr`` answers on a big project: 100,000 jobs, 5,000 of them failed.

    .venv/bin/python bench/xpr_speed.py [--jobs 100000] [--failed 5000] [--repeat 5]

Builds the project's jobs.db with the real JobsDB layout (rows inserted in bulk, no queue),
then runs the installed ``xpr`` console script as a user would, in a fresh process each time.
Prints the median wall time of each command against its target and the ratio
(ratio < 1 = within target), both in wall time and in CPU time (user + system): on a
machine shared with other work the wall time mostly measures waiting for a core, the CPU
time is what the command itself costs. A Python process that does nothing is timed too, as
the floor every command pays.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from expyre.jobsdb import JobsDB

STATES = ["processed"] * 80 + ["succeeded"] * 10 + ["started"] * 5 + ["submitted"] * 5


def build(root: Path, n_jobs: int, n_failed: int) -> None:
    """A jobs.db with ``n_jobs`` rows, ``n_failed`` of them failed (others mostly finished)."""
    db = JobsDB(root / "jobs.db")
    db.count_by_status()  # creates the file with the current layout
    conn = db._connection()
    rng = random.Random(0)
    now = time.time()
    failed = set(rng.sample(range(n_jobs), n_failed))
    rows = []
    for i in range(n_jobs):
        t = now - 86400 + i * 0.5
        status = "failed" if i in failed else rng.choice(STATES)
        rows.append(
            (f"relax_chunk_{i}_{i:010x}", f"relax_chunk_{i % 200}", f"k{i}", f"c{i}", "f",
             "slurm", status, str(100000 + i), str(root / "stage" / f"job{i}"), None,
             "completed", 1, t, t + 1, t + 60, None, json.dumps({"staged": True}))
        )  # fmt: skip
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO jobs (id, name, key, call_digest, code_fingerprint, system, status,"
        " remote_id, stage_dir, remote_dir, queue_state, n_submissions, created_at,"
        " submitted_at, updated_at, left_queue_at, info)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )
    conn.execute("COMMIT")
    db.close()


def median_s(argv: list[str], env: dict, repeat: int) -> tuple[float, float, int]:
    """Median wall and CPU (user + system) seconds of a command, and its output lines."""
    walls, cpus, lines = [], [], 0
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
        walls.append(time.perf_counter() - t0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        lines = proc.stdout.count("\n")
    return statistics.median(walls), statistics.median(cpus), lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--failed", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    xpr = str(Path(sys.executable).with_name("xpr"))
    tmp = Path(tempfile.mkdtemp(prefix="xpr-speed-"))
    try:
        root = tmp / "_expyre"
        root.mkdir()
        t0 = time.perf_counter()
        build(root, args.jobs, args.failed)
        print(f"built {args.jobs} jobs ({args.failed} failed) in {time.perf_counter() - t0:.1f} s")
        env = {**os.environ, "EXPYRE_ROOT": str(root), "HOME": str(tmp), "COLUMNS": "120"}
        cases = [
            ("python -c pass (floor)", [sys.executable, "-c", "pass"], None),
            ("xpr ls (summary)", [xpr, "ls"], 0.5),
            (f"xpr ls -s failed ({args.failed} rows)", [xpr, "ls", "-s", "failed"], 0.2),
            ("xpr ls -s ongoing", [xpr, "ls", "-s", "ongoing"], None),
            (f"xpr ls --all ({args.jobs} rows)", [xpr, "ls", "--all"], None),
        ]
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
        print(
            f"{'command':<32} {'lines':>7} {'wall s':>7} {'cpu s':>6} {'target s':>8}"
            f" {'wall/tgt':>8} {'cpu/tgt':>7}"
        )
        for label, argv, target in cases:
            wall, cpu, lines = median_s(argv, env, args.repeat)
            r_wall = f"{wall / target:.2f}" if target else "-"
            r_cpu = f"{cpu / target:.2f}" if target else "-"
            tgt = f"{target:.2f}" if target else "-"
            print(
                f"{label:<32} {lines:>7} {wall:>7.3f} {cpu:>6.3f} {tgt:>8} {r_wall:>8} {r_cpu:>7}"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
