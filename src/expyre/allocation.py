"""What runs inside a packed allocation: ``python -m expyre.allocation PACK_DIR``.

A *pack* is one directory holding ``tasks`` (the job directories of its chunks, one per
line, relative to the pack directory) and the allocation's own logs. Each allocation of a pack walks the list and, for each
chunk, *claims* it by creating the directory ``<job dir>/_expyre_claim`` -- ``mkdir`` is atomic
on every filesystem jobs share (NFS included), so of all allocations racing for a chunk exactly
one runs it, with no daemon and no database on the cluster. The claimed chunk runs through its
own job script (``bash _expyre_job.sh``: the same environment variables, commands and runner
as when it is a queue job of its own), with its stdout/stderr in its own files; then the
allocation writes ``<job dir>/_expyre_done`` so a driver on this machine can collect the chunk
while the allocation goes on.

With ``--in-process`` (chosen by the driver when the chunks' job scripts add nothing to the
allocation's own: no pre/post-run commands, the same environment variables, which the
allocation script then exports) the allocation imports the first chunk's code once and runs
each claimed chunk in a *forked child* instead of a fresh Python: the child sets the chunk's
``EXPYRE_JOB_ID``, sends its stdout/stderr to the chunk's own files and calls
:func:`expyre.runner.run` (same outcome files, same code check, per chunk). A chunk that
crashes or exits takes only its child down; the allocation records its exit status (128 +
signal number for a signal, as bash would) and claims the next chunk.

Before claiming another chunk the allocation checks its remaining time (``--deadline``, a
Unix time, from the queue's time limit) against the longest chunk it has run so far: it stops
rather than start a chunk it cannot finish, and the driver puts unclaimed chunks into a new
allocation. A chunk claimed by an allocation that was then killed keeps its claim and has no
result: the driver declares it ``died`` once every allocation of its pack has left the queue.

Like :mod:`expyre.runner` this module imports nothing from expyre but the runner (a job only
needs Python).
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import pickle
import socket
import subprocess
import sys
import time
from pathlib import Path

from expyre.atomicfile import write_atomic

TASKS_FILE = "tasks"
CLAIM_DIR = "_expyre_claim"
DONE_FILE = "_expyre_done"
SCRIPT_FILE = "_expyre_job.sh"  # the chunk's own job script (expyre.runner.SCRIPT_FILE)
STDOUT_FILE = "_expyre_job.stdout"
STDERR_FILE = "_expyre_job.stderr"
# spare time asked for before claiming a chunk, as a multiple of the longest chunk so far
TIME_MARGIN = 1.5
CHANGE_MARKER_ENV = "EXPYRE_CHANGE_MARKER"  # expyre.localqueue.CHANGE_MARKER_ENV


def claim(job_dir: Path, allocation: str) -> bool:
    """Claim one chunk for this allocation; False if another allocation has it already."""
    try:
        os.mkdir(job_dir / CLAIM_DIR)
    except FileExistsError:
        return False
    # who claimed it and when, for people reading the run directory (not needed for safety)
    info = {"allocation": allocation, "host": socket.gethostname(), "pid": os.getpid()}
    info["at"] = time.time()
    (job_dir / CLAIM_DIR / "by.json").write_text(json.dumps(info))
    return True


def run_chunk(job_dir: Path, in_process: bool = False, project_dir: str | None = None) -> int:
    """Run a claimed chunk (its job script, or a forked child); mark it done; its exit code."""
    if in_process:
        code = _run_forked(job_dir, project_dir)
    else:
        with open(job_dir / STDOUT_FILE, "ab") as out, open(job_dir / STDERR_FILE, "ab") as err:
            code = subprocess.call(
                ["bash", str(job_dir / SCRIPT_FILE)], cwd=job_dir, stdout=out, stderr=err
            )
    write_atomic(job_dir / DONE_FILE, f"{code}\n", durable=False)
    marker = os.environ.get(CHANGE_MARKER_ENV)
    if marker:  # set by the local queue: wakes a driver waiting on this machine
        with contextlib.suppress(OSError):
            os.utime(marker)
    return code


def preload(job_dir: Path, project_dir: str | None = None) -> None:
    """Import what a chunk's call needs, once, in the allocation (its forked children share it).

    Unpickling the call imports the modules of its function and arguments. Any failure is
    left for the chunk's own run to report (in its result file), so it is ignored here.
    """
    from expyre import runner

    try:
        import expyre.fingerprint  # noqa: F401 - the per-chunk code check needs it

        runner._extend_sys_path(
            runner._read_meta(job_dir), Path(project_dir) if project_dir else None
        )
        pickle.loads((job_dir / runner.CALL_FILE).read_bytes())
    except BaseException as exc:  # noqa: BLE001 - the chunk reports it when it runs
        print(f"allocation: preloading {job_dir} failed ({exc!r})", file=sys.stderr, flush=True)


def _run_forked(job_dir: Path, project_dir: str | None = None) -> int:
    """Run a chunk's call in a forked child of this allocation; its exit code.

    The child is what a chunk job script would have been: its own ``EXPYRE_JOB_ID``, its
    stdout/stderr in its job dir, :func:`expyre.runner.run`. Whatever the child does (raise,
    exit, crash), only the child ends.
    """
    from expyre import runner

    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the chunk
        code = runner.EXIT_RUNNER_ERROR
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
            os.dup2(os.open(job_dir / STDOUT_FILE, flags, 0o644), 1)
            os.dup2(os.open(job_dir / STDERR_FILE, flags, 0o644), 2)
            job_id = runner._read_meta(job_dir).get("job_id")
            if job_id:
                os.environ["EXPYRE_JOB_ID"] = str(job_id)
            code = runner.run(job_dir, project_dir)
        except BaseException:  # noqa: BLE001 - reported in the chunk's stderr
            import traceback

            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code  # a signal: 128 + its number, as bash reports


#: environment variables naming the array task this process is (Slurm, SGE, PBS Pro)
ARRAY_TASK_ENV = ("SLURM_ARRAY_TASK_ID", "SGE_TASK_ID", "PBS_ARRAY_INDEX")


def array_task() -> str | None:
    """This allocation's array task id, or None outside a job array.

    SGE sets ``SGE_TASK_ID=undefined`` in jobs that are not arrays.
    """
    for name in ARRAY_TASK_ENV:
        value = os.environ.get(name, "")
        if value and value != "undefined":
            return value
    return None


def task_log_names(task: str) -> tuple[str, str]:
    """Names (in the pack dir) of the stdout and stderr files of array task ``task``."""
    return f"_expyre_task_{task}.stdout", f"_expyre_task_{task}.stderr"


def _own_task_logs(pack_dir: Path, task: str) -> None:
    """Send this array task's output to files of its own in the pack dir.

    The scheduler gives every task of an array the pack's one stdout/stderr file, so the
    tasks' lines would interleave (or overwrite each other); each task reopens its standard
    streams on its own files instead, whatever the scheduler.
    """
    out_name, err_name = task_log_names(task)
    flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(os.open(pack_dir / out_name, flags, 0o644), 1)
    os.dup2(os.open(pack_dir / err_name, flags, 0o644), 2)


def run_pack(
    pack_dir: str | os.PathLike,
    deadline: float | None = None,
    in_process: bool = False,
    project_dir: str | None = None,
) -> int:
    """Claim and run the pack's chunks until none is left (or time runs short).

    Parameters
    ----------
    pack_dir : path
        Directory with the ``tasks`` file.
    deadline : float, optional
        Unix time (s) at which the queue ends this allocation; None for no limit.
    in_process : bool
        Run each chunk in a forked child of this process (imports paid once) instead of
        through its job script.

    Returns
    -------
    int
        0; a chunk's failure is that chunk's result, not the allocation's.
    """
    pack_dir = Path(pack_dir)
    allocation = os.environ.get("SLURM_JOB_ID") or os.environ.get("JOB_ID") or str(os.getpid())
    task = array_task()
    if task is not None:
        allocation = f"{os.environ.get('SLURM_ARRAY_JOB_ID') or allocation}[{task}]"
        _own_task_logs(pack_dir, task)
    # relative to the pack dir (absolute in packs written by older versions)
    lines = (pack_dir / TASKS_FILE).read_text().splitlines()
    task_dirs = [pack_dir / line for line in lines if line]
    longest = 0.0
    ran = 0
    for job_dir in task_dirs:
        if (job_dir / CLAIM_DIR).exists():
            continue  # cheap pre-check; the mkdir in claim() is what decides
        if deadline is not None and time.time() + TIME_MARGIN * longest > deadline:
            print(f"allocation {allocation}: stopping, too little time left", file=sys.stderr)
            break
        if not claim(job_dir, allocation):
            continue
        if in_process and not ran:
            preload(job_dir, project_dir)
            # what is loaded now lives as long as the allocation: out of the collector's
            # reach, a garbage collection in a forked chunk does not touch (and so copy)
            # every page the allocation holds (~0.2 s per chunk with ASE and scipy loaded)
            gc.freeze()
        t0 = time.monotonic()
        code = run_chunk(job_dir, in_process, project_dir)
        longest = max(longest, time.monotonic() - t0)
        ran += 1
        print(f"allocation {allocation}: ran {job_dir} (exit {code})", flush=True)
    print(f"allocation {allocation}: {ran} chunk(s) run, none left to claim", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m expyre.allocation PACK_DIR [--deadline-in S] [--in-process]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    in_process = "--in-process" in argv
    if in_process:
        argv.remove("--in-process")
    project_dir = None
    if "--project-dir" in argv[:-1]:  # the project on this machine (see expyre.runner)
        at = argv.index("--project-dir")
        project_dir = argv[at + 1]
        del argv[at : at + 2]
    if len(argv) not in (1, 3) or (len(argv) == 3 and argv[1] != "--deadline-in"):
        print(
            "usage: python -m expyre.allocation PACK_DIR [--deadline-in SECONDS] [--in-process]",
            file=sys.stderr,
        )
        return 2
    deadline = time.time() + float(argv[2]) if len(argv) == 3 else None
    return run_pack(argv[0], deadline, in_process, project_dir)


if __name__ == "__main__":
    sys.exit(main())
