"""Functions the remote tests run as jobs (importable module: jobs unpickle them by reference)."""

import os
import time


def square(x):
    return x * x


def job_environment(names):
    """The values of environment variables ``names`` inside the job, and the job's cwd."""
    return {n: os.environ.get(n) for n in names}, os.getcwd()


def sleep_for(seconds):
    time.sleep(seconds)
    return seconds


def counted_square(x, log_dir, seconds=0.0):
    """x*x, appending a line to ``log_dir/<x>.runs`` first (to count runs), then sleeping."""
    with open(os.path.join(log_dir, f"{x}.runs"), "a") as fh:
        fh.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return x * x


def chatty(n_lines, then_sleep=0.0):
    """Print ``n_lines`` numbered lines (flushed) and one stderr line, then sleep."""
    import sys

    for i in range(n_lines):
        print(f"line {i}", flush=True)
    print("a warning on stderr", file=sys.stderr, flush=True)
    time.sleep(then_sleep)
    return n_lines


def sleep_then_mark(atoms, seconds):
    """A wfl operation that takes ``seconds`` per item (to run into a time limit)."""
    time.sleep(seconds)
    atoms.info["slept"] = seconds
    return atoms


def allocate_then_mark(atoms, megabytes):
    """A wfl operation that needs ``megabytes`` of memory at once (to run into a limit)."""
    block = bytearray(megabytes * 1024 * 1024)
    atoms.info["allocated_MB"] = len(block) // (1024 * 1024)
    return atoms


def mark_then_sleep(atoms, marker_dir, seconds):
    """A wfl operation that sleeps ``seconds`` the first time any item runs (so the job can be
    caught running), and returns at once for every item after that."""
    marker = os.path.join(marker_dir, "first_run")
    if not os.path.exists(marker):
        with open(marker, "w") as fh:
            fh.write(str(atoms.info.get("id")))
        time.sleep(seconds)
    atoms.info["ran_on"] = os.environ.get("SLURM_JOB_ID") or os.environ.get("JOB_ID")
    return atoms
