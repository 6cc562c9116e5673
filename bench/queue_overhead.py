"""Benchmark: end-to-end wall time of N trivial queued jobs, raw scheduler vs expyre vs wfl.

    .venv/bin/python bench/queue_overhead.py [--n 20] [--systems local,slurm,sge]

Each job computes x*x (bench/_bench_jobs.py), so the wall time is all overhead. Three ways:
raw (``sbatch --wrap`` / ``qsub -b y`` / a detached subprocess for ``local``, then
``squeue``/``qstat``/``poll()`` every 0.25 s until all are gone, then read the outputs: the
floor), expyre (``ExPyRe.start`` each, ``wait_for_jobs``, ``get_results``) and wfl (``wfl.map``
with ``num_inputs_per_queued_job=1``). Status calls are counted (expyre/wfl: calls of
``expyre.system.System.queue_states``; raw: polls). Every row runs in its own fresh project
(EXPYRE_ROOT in a temporary directory) so no job is reused; Slurm and SGE rows need the CI
daemons (``bash ci/start-slurm.sh``, ``bash ci/start-sge.sh``) and are skipped otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _bench_jobs import square, square_atoms  # this directory is sys.path[0]
from ase import Atoms

from expyre import preflight
from expyre.func import ExPyRe
from expyre.poll import wait_for_jobs
from expyre.system import System
from wfl.configset import ConfigSet, OutputSpec
from wfl.map import map as wfl_map

BENCH_DIR = Path(__file__).resolve().parent
RAW_POLL_S = 0.25  # raw rows poll this often: tighter than any tool on top, so a floor
TIMEOUT_S = 900.0  # per row; trivial jobs on a 2-core node should need far less
RESOURCES = {"num_cores": 1, "max_time": "10m"}
ENV_VARS = [f"PYTHONPATH={BENCH_DIR}"]  # so the job can import _bench_jobs
STATUS_CALLS = [0]


def _counting_status(original: Callable) -> Callable:
    def status(self, remote_ids):
        STATUS_CALLS[0] += 1
        return original(self, remote_ids)

    return status


System.queue_states = _counting_status(System.queue_states)


def write_config(root: Path) -> None:
    """config.json with systems local, slurm, sge as in ci/write-test-config.sh."""
    cores = os.cpu_count() or 1
    systems = {
        "local": {"scheduler": "local", "partitions": {"local": {"num_cores": cores}}},
        "slurm": {
            "scheduler": "slurm",
            "partitions": {
                "standard": {"num_cores": cores, "max_time": None},
                "debug": {"num_cores": cores, "max_time": "1h"},
            },
        },
        "sge": {"scheduler": "sge", "partitions": {"all.q": {"num_cores": cores}}},
    }
    for system in systems.values():
        system["host"] = None
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"systems": systems}, indent=2))


def unusable_reason(sys_name: str) -> str | None:
    """Why ``sys_name`` cannot run jobs here, or None if it answers."""
    probe = {"slurm": ["sinfo", "--noheader"], "sge": ["qstat"]}.get(sys_name)
    if probe is None:
        return None
    tool = {"slurm": "sbatch", "sge": "qsub"}[sys_name]
    if shutil.which(tool) is None:
        return f"{tool} not found (install with ci/install-system-packages.sh)"
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=20)
    except subprocess.TimeoutExpired:
        return f"{probe[0]} hung for 20 s (start the daemons: bash ci/start-{sys_name}.sh)"
    if proc.returncode != 0:
        return f"{probe[0]} failed: {proc.stderr.strip()[:120]} (bash ci/start-{sys_name}.sh)"
    return None


def _live_ids(argv: list[str]) -> set[str]:
    """First words of the queue listing's lines (job ids), for squeue / qstat."""
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.split()}


def run_raw(sys_name: str, n: int, out_dir: Path) -> list[int]:
    """Submit ``n`` jobs straight to the scheduler, poll until gone, read their outputs."""
    out_dir.mkdir(parents=True)
    procs, ids = [], set()
    for i in range(n):
        out = out_dir / f"raw_{i}.out"
        argv = [sys.executable, str(BENCH_DIR / "_bench_jobs.py"), str(i)]
        if sys_name == "local":  # detached like the local queue: own session, own output file
            with open(out, "w") as f:
                procs.append(subprocess.Popen(argv, stdout=f, start_new_session=True))
            continue
        if sys_name == "slurm":
            submit = ["sbatch", "--parsable", "-J", f"qo_raw_{i}", "-o", str(out)]
            submit += ["--wrap", shlex.join(argv)]
        else:
            submit = ["qsub", "-terse", "-b", "y", "-j", "y", "-N", f"qo_raw_{i}", "-o", str(out)]
            submit += argv
        proc = subprocess.run(submit, capture_output=True, text=True, check=True)
        ids.add(proc.stdout.strip().splitlines()[-1].split(";")[0])
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        STATUS_CALLS[0] += 1
        if sys_name == "local":
            live = [p for p in procs if p.poll() is None]
        elif sys_name == "slurm":
            live = ids & _live_ids(["squeue", "--me", "--noheader", "--format=%i"])
        else:
            live = ids & _live_ids(["qstat"])
        if not live:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"raw {sys_name}: {len(live)} job(s) still queued after {TIMEOUT_S} s"
            )
        time.sleep(RAW_POLL_S)
    return [int((out_dir / f"raw_{i}.out").read_text().split()[-1]) for i in range(n)]


def run_expyre(sys_name: str, n: int) -> list[int]:
    """One ExPyRe per item, all started, then gathered with wait_for_jobs."""
    jobs = [
        ExPyRe(f"qo_{i}", function=square, args=[i], env_vars=ENV_VARS).start(
            RESOURCES, system_name=sys_name, partial_node=True
        )
        for i in range(n)
    ]
    values = {}
    for job in wait_for_jobs(jobs, timeout=TIMEOUT_S):
        values[job.id] = job.get_results(timeout=0)[0]
        job.mark_processed()
    return [values[job.id] for job in jobs]


def run_wfl(sys_name: str, n: int) -> list[int]:
    """wfl.map over n configurations, one queued job per configuration."""
    remote_info = {
        "sys_name": sys_name,
        "job_name": "qo_wfl",
        "resources": RESOURCES,
        "partial_node": True,
        "num_inputs_per_queued_job": 1,
        "env_vars": ENV_VARS,
        "timeout": TIMEOUT_S,
    }
    configs = [Atoms("H", info={"x": i}) for i in range(n)]
    out = wfl_map(
        ConfigSet(configs), OutputSpec(), square_atoms, autopara_info={"remote_info": remote_info}
    )
    return [at.info["x_squared"] for at in out]


def bench_row(method: str, sys_name: str, n: int, work: Path) -> tuple[float, int]:
    """Wall time (s) and status calls of one method on one system, in a fresh project."""
    root = work / f"{sys_name}-{method}" / "_expyre"
    write_config(root)
    os.environ["EXPYRE_ROOT"] = str(root)
    preflight._checked.clear()  # every row pays the once-per-process check, like a fresh script
    STATUS_CALLS[0] = 0
    t0 = time.perf_counter()
    if method == "raw":
        values = run_raw(sys_name, n, root.parent / "raw")
    else:
        values = (run_expyre if method == "expyre" else run_wfl)(sys_name, n)
    wall = time.perf_counter() - t0
    if values != [i * i for i in range(n)]:
        raise RuntimeError(f"{method} on {sys_name} returned wrong values: {values}")
    return wall, STATUS_CALLS[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="jobs per row (default 20)")
    parser.add_argument(
        "--systems", default="local,slurm,sge", help="comma-separated, of local, slurm, sge"
    )
    args = parser.parse_args()
    systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    bad = [s for s in systems if s not in ("local", "slurm", "sge")]
    if bad or args.n < 1:
        parser.error(f"--systems {args.systems!r} / --n {args.n}: use local,slurm,sge and n >= 1")

    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="qo_bench") as tmp:
        work = Path(tmp)
        os.environ["HOME"] = str(work)  # no ~/.expyre/config.json of the user leaks in
        os.environ.pop("EXPYRE_SYS", None)
        os.chdir(work)
        for sys_name in systems:
            reason = unusable_reason(sys_name)
            if reason:
                notes.append(f"skipped {sys_name}: {reason}")
                continue
            raw_wall = None
            for method in ("raw", "expyre", "wfl"):
                print(f"[queue_overhead] {sys_name} / {method} ...", file=sys.stderr, flush=True)
                wall, calls = bench_row(method, sys_name, args.n, work)
                raw_wall = raw_wall or wall
                rows.append((sys_name, method, wall, calls, wall / raw_wall))

    print(
        f"{args.n} trivial jobs (x*x) per row, {os.cpu_count()} cores; raw polls every {RAW_POLL_S} s"
    )
    print(f"{'system':<8}{'method':<8}{'wall s':>9}{'s/job':>8}{'status calls':>14}{'vs raw':>8}")
    for sys_name, method, wall, calls, ratio in rows:
        print(
            f"{sys_name:<8}{method:<8}{wall:>9.2f}{wall / args.n:>8.2f}{calls:>14d}{ratio:>7.2f}x"
        )
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
