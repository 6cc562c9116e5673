"""Benchmark: the driver's memory and time per job at 1,000 and 10,000 jobs.

    .venv/bin/python bench/driver_memory.py [--sizes 1000,10000] [--polls 5]

A stand-in for the driver of a large operation that creates and polls jobs without running
them (running 10,000 chunks would take the machine for an hour): in a fresh project and a
fresh process per size, it creates N trivial jobs (``ExPyRe`` of ``abs(i)``) inside one
staging batch, as an operation does, then refreshes them ``--polls`` times as a poll does
(:func:`expyre.poll.refresh_jobs`; the jobs stay ``created``, so no queue is asked). Reported
per size: the process's peak resident memory (``ru_maxrss``), the memory above the bare
imports divided by N, and the creation and poll time per job. Memory flat in the number of
jobs means the per-job figure stays the same from 1,000 to 10,000.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = """
import json, resource, sys, time
n, polls = int(sys.argv[1]), int(sys.argv[2])
from expyre.func import ExPyRe
from expyre.poll import refresh_jobs
try:
    from expyre.stagedir import staging_batch
except ImportError:  # an expyre from before staging batches: each job flushes its own
    from contextlib import nullcontext as staging_batch
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t0 = time.perf_counter()
with staging_batch():
    jobs = [ExPyRe(f"mem_{i}", function=abs, args=[i]) for i in range(n)]
t1 = time.perf_counter()
for _ in range(polls):
    refresh_jobs(jobs)
t2 = time.perf_counter()
assert all(job.status == "created" and job.row["info"]["staged"] for job in jobs)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_kib": base, "peak_kib": peak, "create_s": t1 - t0,
                  "poll_s": (t2 - t1) / max(1, polls)}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="numbers of jobs")
    parser.add_argument("--polls", type=int, default=5, help="refreshes of all jobs")
    args = parser.parse_args()
    rows = []
    for n in [int(s) for s in args.sizes.split(",") if s]:
        with tempfile.TemporaryDirectory(prefix="driver_memory") as tmp:
            work = Path(tmp)
            (work / "_expyre").mkdir()
            (work / "script.py").write_text(SCRIPT)
            env = dict(os.environ, EXPYRE_ROOT=str(work / "_expyre"), HOME=str(work))
            env.pop("EXPYRE_SYS", None)
            print(f"[driver_memory] {n} jobs ...", file=sys.stderr, flush=True)
            proc = subprocess.run(
                [sys.executable, "script.py", str(n), str(args.polls)],
                cwd=work, env=env, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if proc.returncode != 0:
                raise SystemExit(f"{n} jobs failed:\n{proc.stderr[-3000:]}")
            rows.append((n, json.loads(proc.stdout.strip().splitlines()[-1])))
    print(f"driver memory and time per job (stand-in: create + {args.polls} polls, no run)")
    print(f"{'jobs':>7}{'peak RSS MiB':>14}{'KiB/job':>9}{'create ms/job':>15}{'poll ms/job':>13}")
    for n, r in rows:
        per_job = (r["peak_kib"] - r["base_kib"]) / n
        print(
            f"{n:>7}{r['peak_kib'] / 1024:>14.0f}{per_job:>9.1f}"
            f"{1000 * r['create_s'] / n:>15.2f}{1000 * r['poll_s'] / n:>13.3f}"
        )
    load = os.getloadavg()
    print("load average (1, 5, 15 min) at end " + ", ".join(f"{x:.1f}" for x in load))


if __name__ == "__main__":
    main()
