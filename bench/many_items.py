"""Benchmark: N trivial items, one per chunk, end to end -- submit commands, rerun, memory.

    .venv/bin/python bench/many_items.py [--n 1000] [--systems slurm] [--packings 2,array]

One ``wfl.map`` over N small structures (``info["x_squared"] = info["x"] ** 2``,
bench/_bench_jobs.py), ``num_inputs_per_queued_job=1``: N chunks, each an expyre job with
its own key, result and restart guarantees. Each packing runs in a fresh project, in a
subprocess, then once more as a rerun (everything done: nothing submitted):

* ``K`` (a number): ``max_allocations=K`` packed allocations of one core each;
* ``array``: one job array (``job_array=True``), at most ``--array-tasks`` tasks.

Submit commands are counted by a ``sbatch``/``qsub`` on ``PATH`` that logs each call and
runs the real one. Reported per row: wall time of the whole script (imports included),
submit commands, the rerun's wall time, and the driver's peak resident memory (first run,
its own ``ru_maxrss``); ``rerun map s`` is the rerun's ``wfl.map`` call alone (the rerun's
wall time includes importing ASE and wfl and reading the results back). Targets at N = 1,000
on Slurm: <= 60 s, <= 20 submit commands, rerun < 1 s. Results are checked (every square
present, in order).
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
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
TIMEOUT_S = 1800
SUBMIT_COMMANDS = {"slurm": "sbatch", "sge": "qsub"}

SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
from ase import Atoms
from wfl.configset import ConfigSet, OutputSpec
from wfl.map import map as wfl_map
from _bench_jobs import square_atoms

n, sys_name, packing = int(sys.argv[1]), sys.argv[2], sys.argv[3]
configs = [Atoms("H", cell=[2, 2, 2], pbc=True, info={"x": i}) for i in range(n)]
info = {"sys_name": sys_name, "job_name": "many", "num_inputs_per_queued_job": 1,
        "resources": {"num_cores": 1, "max_time": "30m"}, "partial_node": True,
        "timeout": 1800}
if packing.startswith("array"):
    info["job_array"] = True
    info["max_allocations"] = int(packing.split(":")[1])
else:
    info["max_allocations"] = int(packing)
t_map = time.perf_counter()
out = wfl_map(ConfigSet(configs), OutputSpec("out.xyz"), square_atoms,
              autopara_info={"remote_info": info})
map_s = time.perf_counter() - t_map
squares = [at.info["x_squared"] for at in out]
assert squares == [i * i for i in range(n)], "results missing or out of order"
import resource
rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"wall_s": time.perf_counter() - t0, "rss_mib": rss_mib, "map_s": map_s}))
"""


def counting_shim(shim_dir: Path, command: str, log: Path) -> None:
    """A ``command`` first on PATH that logs each call to ``log`` and runs the real one."""
    real = shutil.which(command)
    if real is None:
        raise SystemExit(f"{command} not found: start the daemons (ci/start-slurm.sh)")
    shim = shim_dir / command
    shim.write_text(f'#!/bin/bash\necho "$*" >> {shlex.quote(str(log))}\nexec {real} "$@"\n')
    shim.chmod(0o755)


def run(work: Path, env: dict, argv: list[str]) -> tuple[float, float, float]:
    """Run the script once; (wall s, the driver's peak RSS in MiB, its wfl.map call's s)."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, str(work / "many_items_script.py"), *argv],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{argv} failed:\n{proc.stderr[-3000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return wall, report["rss_mib"], report["map_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="items (= chunks)")
    parser.add_argument("--systems", default="slurm", help="of slurm, sge, local")
    parser.add_argument("--packings", default="2,array", help="K (max_allocations) or array")
    parser.add_argument("--array-tasks", type=int, default=2, help="most tasks of the array")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="many_items") as tmp:
        tmp = Path(tmp)
        shim_dir = tmp / "shims"
        shim_dir.mkdir()
        submit_log = tmp / "submits.log"
        for command in SUBMIT_COMMANDS.values():
            if shutil.which(command):
                counting_shim(shim_dir, command, submit_log)
        for sys_name in [s for s in args.systems.split(",") if s]:
            for packing in [p for p in args.packings.split(",") if p]:
                label = f"array:{args.array_tasks}" if packing == "array" else packing
                work = tmp / f"{sys_name}-{packing}"
                root = work / "_expyre"
                root.mkdir(parents=True)
                scheduler = "local" if sys_name == "local" else sys_name
                partitions = {"standard": {"num_cores": cores, "max_time": None}}
                systems = {sys_name: {"host": None, "scheduler": scheduler,
                                      "partitions": partitions}}  # fmt: skip
                (root / "config.json").write_text(json.dumps({"systems": systems}))
                (work / "many_items_script.py").write_text(SCRIPT)
                env = dict(
                    os.environ,
                    EXPYRE_ROOT=str(root),
                    HOME=str(work),
                    PATH=f"{shim_dir}{os.pathsep}{os.environ['PATH']}",
                    PYTHONPATH=os.pathsep.join(filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")])),
                )  # fmt: skip
                for name in ("EXPYRE_SYS", "WFL_EXPYRE_INFO"):
                    env.pop(name, None)
                submit_log.write_text("")
                print(f"[many_items] {sys_name} {label} ...", file=sys.stderr, flush=True)
                wall, rss, _ = run(work, env, [str(args.n), sys_name, label])
                submits = len(submit_log.read_text().splitlines())
                rerun, _, rerun_map = run(work, env, [str(args.n), sys_name, label])
                resubmits = len(submit_log.read_text().splitlines()) - submits
                rows.append((sys_name, label, wall, submits, rerun, rerun_map, resubmits, rss))
    load_end = os.getloadavg()
    print(f"many items: {args.n} trivial items, 1 per chunk; {cores} cores")
    print(
        f"{'system':<8}{'packing':<10}{'wall s':>8}{'submits':>9}{'rerun s':>9}"
        f"{'rerun map s':>13}{'rerun submits':>15}{'peak RSS MiB':>14}"
    )
    for sys_name, label, wall, submits, rerun, rerun_map, resubmits, rss in rows:
        print(
            f"{sys_name:<8}{label:<10}{wall:>8.1f}{submits:>9}{rerun:>9.2f}{rerun_map:>13.2f}"
            f"{resubmits:>15}{rss:>14.0f}"
        )
    print(
        "load average (1, 5, 15 min) at start "
        + ", ".join(f"{x:.1f}" for x in load_start)
        + "; at end "
        + ", ".join(f"{x:.1f}" for x in load_end)
    )


if __name__ == "__main__":
    main()
