"""Helpers shared by expyre tests (config writers, functions that jobs run).

Job functions live in this importable module (not in test files) so jobs unpickle them by
reference without re-importing a test module.
"""

import json
import os
import shlex
import sys
import time
from pathlib import Path


def write_config(root, systems, **top):
    """Write ``root/config.json`` with the given systems."""
    (Path(root) / "config.json").write_text(json.dumps({"systems": systems, **top}))


def local_system(num_cores=2, max_time=None, **extra):
    """A config.json entry for this machine's local queue."""
    return {
        "host": None,
        "scheduler": "local",
        "python_cmd": shlex.quote(sys.executable),
        "partitions": {"cpu": {"num_cores": num_cores, "max_time": max_time}},
        **extra,
    }


def square(x):
    return x * x


def fail_with(message):
    raise ValueError(message)


class UserDefinedError(Exception):
    """An exception of a user's own code, with a constructor of its own and an attribute."""

    def __init__(self, code, text):
        super().__init__(code, text)
        self.code = code


class FinalError(Exception):
    """An exception class that refuses subclasses (as some libraries' final classes do)."""

    def __init_subclass__(cls, **kwargs):
        raise TypeError(f"{cls.__name__}: FinalError cannot be subclassed")


def raise_exception(kind):
    """Raise one of several kinds of exception inside a job."""
    if kind == "user":
        raise UserDefinedError(17, "bad input")
    if kind == "missing_file":
        Path("/nonexistent/expyre-test-file").read_text()
    if kind == "final":
        raise FinalError("final")
    if kind == "keyboard":
        raise KeyboardInterrupt("stop")
    raise ValueError(kind)


def sleep_then(seconds, value, log_dir=None):
    """Sleep; with ``log_dir``, record start and end times there (for overlap counting)."""
    start = time.time()
    if log_dir:
        Path(log_dir, f"{os.getpid()}.pid").write_text(str(os.getpid()))
    time.sleep(seconds)
    if log_dir:
        Path(log_dir, f"{value}.span").write_text(f"{start} {time.time()}")
    return value


def report_env(names):
    """Environment values the job sees, plus the current directory's listing."""
    return {n: os.environ.get(n) for n in names}, sorted(os.listdir("."))


def write_output(name, text):
    Path(name).write_text(text)
    return "ok"


def counted_square(x, log_dir, seconds=0.0):
    """x*x, appending one line to ``log_dir/<x>.runs`` per run (to count runs), after a sleep.

    The line is written first, so a run killed during its sleep still counts as started.
    """
    with open(Path(log_dir, f"{x}.runs"), "a") as fh:
        fh.write(f"{os.getpid()}\n")
    time.sleep(seconds)
    return x * x


def run_counts(log_dir, values):
    """How many times each of ``values`` was started (see :func:`counted_square`)."""
    counts = {}
    for x in values:
        path = Path(log_dir, f"{x}.runs")
        counts[x] = len(path.read_text().splitlines()) if path.exists() else 0
    return counts


def chatty(n_lines, then_sleep=0.0, fail=False):
    """Print ``n_lines`` numbered lines to stdout and one to stderr, sleep, maybe raise."""
    for i in range(n_lines):
        print(f"line {i}", flush=True)
    print("a warning on stderr", file=sys.stderr, flush=True)
    time.sleep(then_sleep)
    if fail:
        raise RuntimeError(f"chatty failed after {n_lines} lines")
    return n_lines


def wait_for_file(path, timeout=600):
    """Block until ``path`` exists (a job that holds its cores until the test releases it)."""
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} never appeared")
        time.sleep(0.1)
    return "released"


def die_first_time(marker, value):
    """SIGKILL the job's own process the first time (as an out-of-memory killer would), then
    return ``value`` on a rerun: a job that needs a second submission."""
    import signal
    from pathlib import Path

    if not Path(marker).exists():
        Path(marker).write_text("killed once")
        os.kill(os.getpid(), signal.SIGKILL)
    return value


def crash_or_square(x, log_dir):
    """x*x, except for x < 0: the process kills itself (SIGKILL), as a segfault would end it.

    Logs one line per run to ``log_dir/<x>.runs`` (see :func:`counted_square`) and prints
    its job id and pid, so tests can see which process and environment ran it.
    """
    with open(Path(log_dir, f"{x}.runs"), "a") as fh:
        fh.write(f"{os.getpid()}\n")
    print(f"chunk {x} job {os.environ.get('EXPYRE_JOB_ID')} pid {os.getpid()}", flush=True)
    if x < 0:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)
    return x * x
