"""Benchmark: many small chunks end to end -- raw scheduler vs ours vs the reference implementation.

    .venv/bin/python bench/throughput.py [--systems slurm,local] [--refvenv /work/refvenv]
                                         [--workloads relax,trivial] [--no-ref] [--no-pack]
                                         [--methods raw,ours,ours+pack,ours+array,ref]

Workloads (bench/_throughput_workload.py; whole-node jobs, so on a one-node cluster the jobs of
an unpacked run go one after the other):

* ``relax``: 16 EMT cell relaxations through ``wfl.map``, 2 per queued job (8 jobs), with
  ``check_interval=1`` and with default polling;
* ``trivial``: 32 trivial items through ``wfl.map``, 1 per queued job, same two pollings;
* ``serial``: the 16 relaxations in one process, no queue -- the floor.

Every workload runs, in ONE invocation and in fresh projects, as: ``raw`` (the same chunks
submitted straight to the scheduler with ``sbatch --wrap``, or run one after the other for
``local``, polled every 0.25 s), ``ours`` (one chunk = one queue job), ``ours+pack`` (chunks
packed into ``max_allocations=1`` allocation), ``ours+array`` (Slurm: one job array, a task
per chunk, each task taking chunks until none is left), and ``ref`` (wfl 0.3.5 + expyre-wfl 0.1.6 from
the venv ``--refvenv``, Slurm only: its local scheduler is a stub). Each row is the wall time
of the whole script (imports included) as a subprocess; the columns compare it with the
reference (``ref/row``: how many times faster) and with the serial floor (``row/serial``).
The results' digest of every row must match ours (the reference too: the compute is plain
ASE, the same code), or the bench stops.
"""

from __future__ import annotations

import argparse
import json
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
WORKLOAD = BENCH_DIR / "_throughput_workload.py"
RAW_POLL_S = 0.25
TIMEOUT_S = 1800
CHUNKS = {
    "relax": [(i, i + 2) for i in range(0, 16, 2)],
    "trivial": [(i, i + 1) for i in range(32)],
}


def our_config(root: Path, cores: int) -> dict:
    """config.json of our implementation: systems slurm and local (as the CI test config)."""
    return {
        "systems": {
            "local": {
                "host": None,
                "scheduler": "local",
                "partitions": {"local": {"num_cores": cores, "max_time": None}},
            },
            "slurm": {
                "host": None,
                "scheduler": "slurm",
                "partitions": {"standard": {"num_cores": cores, "max_time": None}},
            },
        }
    }


def ref_config(refvenv: Path, cores: int) -> dict:
    """config.json of the reference: it needs its venv activated in the job, and node/task lines."""
    return {
        "systems": {
            "slurm": {
                "host": None,
                "scheduler": "slurm",
                "commands": [f"source {shlex.quote(str(refvenv))}/bin/activate"],
                "header": [
                    "#SBATCH --nodes={num_nodes}",
                    "#SBATCH --ntasks={num_cores}",
                    "#SBATCH --partition={partition}",
                ],
                "partitions": {
                    "standard": {"num_cores": cores, "max_time": "24h", "max_mem": "100GB"}
                },
            }
        }
    }


def environment(root: Path, work: Path, ours: bool = True) -> dict[str, str]:
    env = dict(os.environ)
    # jobs unpickle the workload's functions by reference; a PYTHONPATH given to the bench
    # (e.g. a snapshot of src/ to bench while editing) is ours, never the reference's
    path = [str(BENCH_DIR), os.environ.get("PYTHONPATH") if ours else None]
    env.update(
        EXPYRE_ROOT=str(root),
        HOME=str(work),  # no ~/.expyre of the user leaks in
        PYTHONPATH=os.pathsep.join(filter(None, path)),
        OMP_NUM_THREADS="1",  # BLAS threads would fight over the 2 cores in every row alike
        OPENBLAS_NUM_THREADS="1",
    )
    for name in ("EXPYRE_SYS", "WFL_EXPYRE_INFO", "VIRTUAL_ENV"):
        env.pop(name, None)
    # the reference asks `squeue --user $USER`: with USER unset (as in a container without a
    # login) that lists none of its jobs, so it reads every job as finished and declares a
    # job still running "done but no _succeeded or _error"; a login shell always sets it
    user = pwd.getpwuid(os.getuid()).pw_name
    env.setdefault("USER", user)
    env.setdefault("LOGNAME", user)
    return env


REF_MARK = [""]  # the reference's python path, set in main()


def run_script(python: str, argv: list[str], root: Path, config: dict) -> tuple[float, str]:
    """Run the workload script in a fresh project; (wall s, digest)."""
    root.mkdir(parents=True)
    (root / "config.json").write_text(json.dumps(config, indent=1))
    work = root.parent
    t0 = time.perf_counter()
    proc = subprocess.run(
        [python, str(WORKLOAD), *argv],
        cwd=work,
        env=environment(root, work, ours=not python.startswith(REF_MARK[0])),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{python} {' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return wall, result["digest"]


def cancel_leftovers() -> None:
    """Cancel this bench's jobs still queued (a failed row must not slow the next ones)."""
    if shutil.which("squeue") is None:
        return
    out = subprocess.run(
        ["squeue", "--me", "--noheader", "--format=%i %j"], capture_output=True, text=True
    ).stdout
    ids = [
        w[0]
        for w in (line.split() for line in out.splitlines())
        if len(w) == 2 and (w[1].startswith("tp_") or w[1].startswith("xpk_"))
    ]
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True)


def run_ref(argv: list[str], fresh, refvenv: Path, cores: int, attempts: int = 3):
    """The reference's row, retried if it fails (noted in the table's notes).

    Its jobs are found in the queue by ``$USER`` (set by :func:`environment`); without it
    every job of the reference read as finished at once. Returns (wall s, digest, failed
    attempts).
    """
    failed = 0
    while True:
        try:
            wall, digest = run_script(
                str(refvenv / "bin" / "python"), argv, fresh("ref"), ref_config(refvenv, cores)
            )
            return wall, digest, failed
        except RuntimeError as exc:
            cancel_leftovers()
            failed += 1
            if failed >= attempts:
                raise RuntimeError(f"the reference failed {failed} times; last: {exc}") from exc


def run_raw(sys_name: str, workload: str, work: Path) -> tuple[float, str]:
    """The chunks straight to the scheduler (whole node each), polled every 0.25 s."""
    import hashlib

    import numpy as np

    work.mkdir(parents=True)
    env = environment(work, work)
    chunks = CHUNKS[workload]
    outs = [work / f"raw_{i}.out" for i in range(len(chunks))]
    t0 = time.perf_counter()
    if sys_name == "local":  # whole-node jobs on one node: one after the other
        for (start, stop), out in zip(chunks, outs, strict=True):
            with open(out, "w") as fh:
                argv = [sys.executable, str(WORKLOAD), "raw", workload, str(start), str(stop)]
                subprocess.run(argv, stdout=fh, env=env, check=True, cwd=work)
    else:
        ids = set()
        for (start, stop), out in zip(chunks, outs, strict=True):
            argv = [sys.executable, str(WORKLOAD), "raw", workload, str(start), str(stop)]
            submit = ["sbatch", "--parsable", "--exclusive", "-N", "1", "-o", str(out)]
            submit += ["-J", f"tp_raw_{start}", "--wrap", shlex.join(argv)]
            proc = subprocess.run(submit, capture_output=True, text=True, check=True, env=env)
            ids.add(proc.stdout.strip().split(";")[0])
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            listing = subprocess.run(
                ["squeue", "--me", "--noheader", "--format=%i"], capture_output=True, text=True
            ).stdout.split()
            if not ids & set(listing):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"raw {sys_name} {workload}: jobs still queued")
            time.sleep(RAW_POLL_S)
    values = [row for out in outs for row in json.loads(out.read_text().split("\n")[-2])]
    wall = time.perf_counter() - t0
    if workload == "relax":
        flat = [v[0] for v in values] + [v[1] for v in values]
    else:
        flat = sorted(v[0] for v in values)
    return wall, hashlib.sha256(np.asarray(flat, dtype=float).tobytes()).hexdigest()[:16]


def slurm_reason() -> str | None:
    if shutil.which("sbatch") is None:
        return "sbatch not found (ci/install-system-packages.sh)"
    proc = subprocess.run(["sinfo", "--noheader"], capture_output=True, text=True)
    return None if proc.returncode == 0 else f"sinfo failed (bash ci/start-slurm.sh): {proc.stderr}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--systems", default="slurm,local", help="of slurm, local")
    parser.add_argument("--workloads", default="relax,trivial", help="of relax, trivial")
    parser.add_argument("--pollings", default="1,default", help="check_interval values")
    parser.add_argument("--refvenv", default="/work/refvenv", help="venv of the reference")
    parser.add_argument("--no-ref", action="store_true", help="skip the reference rows")
    parser.add_argument("--no-pack", action="store_true", help="skip the packed rows")
    parser.add_argument(
        "--methods",
        default="raw,ours,ours+pack,ours+array,ref",
        help="rows to run, of raw, ours, ours+pack, ours+array, ref",
    )
    args = parser.parse_args()
    systems = [s for s in args.systems.split(",") if s]
    workloads = [w for w in args.workloads.split(",") if w]
    pollings = [p for p in args.pollings.split(",") if p]
    wanted = set(args.methods.split(","))
    refvenv = Path(args.refvenv).resolve()
    ref_python = refvenv / "bin" / "python"
    REF_MARK[0] = str(refvenv)
    if not args.no_ref and not ref_python.exists():
        parser.error(f"--refvenv {args.refvenv}: no bin/python there; pass the reference's venv")
    cores = os.cpu_count() or 1
    rows: list[tuple[str, str, str, str, float]] = []
    notes = []

    def log(msg: str) -> None:
        print(f"[throughput] {msg}", file=sys.stderr, flush=True)

    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tp_bench") as tmp:
        work = Path(tmp)
        n = 0

        def fresh(tag: str) -> Path:
            nonlocal n
            n += 1
            return work / f"{n:03d}-{tag}" / "_expyre"

        log("serial floor ...")
        serial_wall, expected = run_script(
            sys.executable,
            ["relax-serial", "none", "default"],
            fresh("serial"),
            our_config(work, cores),
        )
        digests = {"relax": expected}
        rows.append(("-", "relax", "-", "serial", serial_wall))
        for sys_name in systems:
            if sys_name == "slurm" and (reason := slurm_reason()):
                notes.append(f"skipped slurm: {reason}")
                continue
            for workload in workloads:
                if "raw" in wanted:
                    log(f"{sys_name} {workload} raw ...")
                    wall, digest = run_raw(sys_name, workload, fresh("raw").parent / "raw")
                    digests.setdefault(workload, digest)
                    rows.append((sys_name, workload, "-", "raw", wall))
                for polling in pollings:
                    methods = [("ours", sys.executable, [])]
                    if not args.no_pack:
                        methods.append(("ours+pack", sys.executable, ["1"]))
                        if sys_name == "slurm":
                            methods.append(("ours+array", sys.executable, ["array"]))
                    if not args.no_ref and sys_name == "slurm":
                        methods.append(("ref", str(ref_python), []))
                    methods = [m for m in methods if m[0] in wanted]
                    for method, python, extra in methods:
                        log(f"{sys_name} {workload} check_interval={polling} {method} ...")
                        argv = [workload, sys_name, polling, *extra]
                        if method == "ref":
                            wall, digest, failed = run_ref(argv, fresh, refvenv, cores)
                            if failed:
                                notes.append(
                                    f"ref {workload} {sys_name} check_interval={polling}: "
                                    f"{failed} attempt(s) failed"
                                    " and were rerun; the row is the successful attempt"
                                )
                        else:
                            config = our_config(work, cores)
                            wall, digest = run_script(python, argv, fresh(method), config)
                        if digest != digests.setdefault(workload, digest):
                            raise RuntimeError(
                                f"{method} {workload} on {sys_name}: digest {digest}, "
                                f"expected {digests[workload]}: results differ"
                            )
                        rows.append((sys_name, workload, polling, method, wall))
                        log(f"  -> {wall:.2f} s")

    load_end = os.getloadavg()
    ref_wall = {(s, w, p): wall for s, w, p, m, wall in rows if m == "ref"}
    print(
        f"throughput: 16 EMT relaxations 2/job and 32 trivial items 1/job, whole-node jobs; "
        f"{cores} cores; raw polls every {RAW_POLL_S} s; wall = whole script incl. imports"
    )
    header = f"{'system':<7}{'workload':<9}{'poll':<9}{'method':<11}{'wall s':>8}"
    print(header + f"{'ref/row':>9}{'row/serial':>11}")
    for sys_name, workload, polling, method, wall in rows:
        ref = ref_wall.get((sys_name, workload, polling))
        vs_ref = f"{ref / wall:>8.2f}x" if ref and method != "ref" else f"{'':>9}"
        vs_serial = f"{wall / serial_wall:>10.2f}x" if workload == "relax" else f"{'':>11}"
        print(f"{sys_name:<7}{workload:<9}{polling:<9}{method:<11}{wall:>8.2f}{vs_ref}{vs_serial}")
    print(
        "load average (1, 5, 15 min) at start "
        + ", ".join(f"{x:.1f}" for x in load_start)
        + "; at end "
        + ", ".join(f"{x:.1f}" for x in load_end)
    )
    for note in notes:
        print(note)


if __name__ == "__main__":
    main()
