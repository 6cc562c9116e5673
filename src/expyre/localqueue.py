"""A daemon-less batch queue for one machine: ``python -m expyre.localqueue``.

Commands (all take ``--queue-dir DIR`` first)::

    submit SCRIPT          queue a job script (run from the job's directory); prints its id
    status ID...           one line "ID STATE" per known job, in one call
    cancel ID...           kill the jobs' processes (queued or running)
    list [--name-prefix P] one line "ID NAME" per job whose name starts with P

How it works. ``submit`` records the job under ``DIR/jobs/ID/`` and starts a detached
*wrapper* process (its own session, so it survives the submitting program being killed).
The wrapper waits for free cores -- one lock file per core, held with ``fcntl.flock`` --
runs ``bash SCRIPT`` in a session of its own, and records the exit code.

The core locks are this machine's, not one project's: they live in one directory per user
(``$EXPYRE_LOCAL_CORES_DIR``, default ``<tmp>/expyre-cores-<uid>``), shared by every queue
directory, so two workflows in two projects together never run more jobs at once than the
partition declares cores. A partition of ``n`` cores uses the locks ``core0`` .. ``core<n-1>``:
partitions of one machine are views of the same cores.

Core locks are inherited by the job's processes, so cores stay taken while any process of
the job lives and are freed by the kernel the moment the last one exits, however it died.
A short "admission" lock makes jobs take their cores one job at a time, so a big job is
never starved by a stream of small ones grabbing cores piecemeal.

A record names the queue directory it was made in. A queue directory copied along with its
project (``cp -a proj proj2``) therefore holds records of the original's jobs: the copy
treats them as unknown, so commands in the copy never signal the original's processes.

The request travels in the script's header lines (``#LOCAL --cores=2 ...``), written by
:class:`expyre.schedulers.local.LocalScheduler`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from expyre.atomicfile import write_atomic
from expyre.privatedir import private_dir

__all__ = ["job_state", "main", "read_header"]

DIRECTIVE = "#LOCAL"
CORES_DIR_ENV = "EXPYRE_LOCAL_CORES_DIR"
_TERM_GRACE_S = 5.0  # between SIGTERM and SIGKILL when cancelling or timing out
CHANGE_MARKER_ENV = "EXPYRE_CHANGE_MARKER"
_CORE_POLL_S = 0.02  # how often the job next in line looks for a free core
# Tests only: seconds the wrapper pauses just before starting the job / just before
# recording its pid, so a cancel can be made to land in exactly those windows.
SPAWN_DELAY_ENV = "EXPYRE_LOCALQUEUE_TEST_SPAWN_DELAY"
RECORD_DELAY_ENV = "EXPYRE_LOCALQUEUE_TEST_RECORD_DELAY"


# --------------------------------------------------------------------------- small helpers


def _write_atomic(path: Path, text: str) -> None:
    # queue state only matters while this machine is up: no fsync
    write_atomic(path, text, durable=False)


def _test_delay(name: str) -> None:
    try:
        seconds = float(os.environ.get(name) or 0)
    except ValueError:
        seconds = 0.0
    if seconds > 0:
        time.sleep(seconds)


def _proc_start_time(pid: int) -> str | None:
    """Kernel start time of a process (guards against pid reuse), None if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None if not _pid_exists(pid) else "?"
    # the command name (field 2) may contain spaces; fields after it are plain
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has finished
        return None
    return fields[19]


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _record_pid(path: Path, pid: int) -> None:
    _write_atomic(path, f"{pid} {_proc_start_time(pid) or '?'}\n")


def _recorded_alive(path: Path) -> bool:
    try:
        pid_text, start = path.read_text().split()
    except (OSError, ValueError):
        return False
    now = _proc_start_time(int(pid_text))
    return now is not None and (start == "?" or now == "?" or now == start)


def _group_alive(pgid: int) -> bool:
    """True while a non-zombie process of process group ``pgid`` exists."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    # killpg also "reaches" zombies (exited, not yet reaped): look for a live member
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[0] != "Z" and fields[2] == str(pgid):
            return True
    return False


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def default_cores_dir() -> Path:
    """Directory of this user's core locks on this machine (see the module docstring).

    A temporary directory, not the home directory: homes are often shared between the
    machines of a cluster, and flock on a network filesystem is unreliable.
    """
    configured = os.environ.get(CORES_DIR_ENV)
    if configured:
        return Path(configured)
    return Path(tempfile.gettempdir(), f"expyre-cores-{os.getuid()}")


def _private_cores_dir(path: Path) -> Path:
    """Create or check the core-lock directory: nobody else may be able to block our jobs."""
    fix = f", or set {CORES_DIR_ENV} to a directory of your own"
    private_dir(path, "local queue core-lock directory", fix)
    return path


def read_header(script: str | os.PathLike) -> dict[str, str]:
    """Parse ``#LOCAL --key=value`` lines of a job script into a dict."""
    options = {}
    for line in Path(script).read_text().splitlines():
        if not line.startswith(DIRECTIVE + " "):
            continue
        for token in shlex.split(line[len(DIRECTIVE) :]):
            key, _, value = token.lstrip("-").partition("=")
            options[key] = value
    return options


# --------------------------------------------------------------------------- the queue


class LocalQueue:
    """The queue's records in one directory; see the module docstring."""

    def __init__(
        self, queue_dir: str | os.PathLike, cores_dir: str | os.PathLike | None = None
    ) -> None:
        self.dir = Path(queue_dir)
        self.jobs = self.dir / "jobs"
        self.cores_dir = Path(cores_dir) if cores_dir is not None else default_cores_dir()

    def _next_id(self) -> str:
        self.jobs.mkdir(parents=True, exist_ok=True)
        with open(self.dir / "counter.lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.seek(0)
            last = int(fh.read().strip() or 0)
            fh.seek(0)
            fh.truncate()
            fh.write(str(last + 1))
            fh.flush()
            os.fsync(fh.fileno())
        return str(last + 1)

    def submit(self, script: str, cwd: str) -> str:
        """Record a job and start its detached wrapper; returns the job id."""
        script_path = Path(cwd, script).resolve()
        options = read_header(script_path)
        qid = self._next_id()
        record = self.jobs / qid
        record.mkdir()
        meta = {
            "name": options.get("job-name", script_path.name),
            "script": str(script_path),
            "cwd": str(Path(cwd).resolve()),
            "partition": options.get("partition", "default"),
            "capacity": int(options.get("capacity", os.cpu_count() or 1)),
            "cores": int(options.get("cores", 1)),
            "time_s": int(options["time"]) if options.get("time") else None,
            "stdout": options.get("stdout", f"{qid}.out"),
            "stderr": options.get("stderr", f"{qid}.err"),
            "submitted_at": time.time(),
            # fixed at submission: the wrapper must use the submitter's locks, whatever its env
            "cores_dir": str(_private_cores_dir(self.cores_dir).resolve()),
            "queue_dir": str(self.dir.resolve()),
        }
        _write_atomic(record / "meta.json", json.dumps(meta, indent=1))
        with open(record / "wrapper.log", "ab") as log:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "expyre.localqueue",
                    "--queue-dir",
                    str(self.dir),
                    "_run",
                    qid,
                ],
                cwd=meta["cwd"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # never the submitter's pipes: it must not wait for us
                stderr=log,
                start_new_session=True,
                close_fds=True,
            )
        _record_pid(record / "pid", proc.pid)
        return qid

    def _own(self, record: Path) -> bool:
        """Whether a record was made by this queue directory (not copied from another)."""
        try:
            made_in = json.loads((record / "meta.json").read_text()).get("queue_dir")
        except (OSError, ValueError):
            return True  # unreadable: job_state reports it as it always did
        if made_in is None or not os.path.exists(made_in):
            # written before records named their queue, or the project was moved here
            return True
        return os.path.samefile(made_in, self.dir)

    def state(self, qid: str) -> str | None:
        """State word of one job (see :func:`job_state`), None if unknown."""
        record = self.jobs / qid
        return job_state(record) if self._own(record) else None

    def list(self, name_prefix: str = "") -> list[tuple[str, str]]:
        """(id, name) of jobs whose name starts with ``name_prefix``, in id order."""
        out = []
        if not self.jobs.is_dir():
            return out
        for record in sorted(
            self.jobs.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else 0
        ):
            try:
                name = json.loads((record / "meta.json").read_text())["name"]
            except (OSError, ValueError, KeyError):
                continue
            if name.startswith(name_prefix) and self._own(record):
                out.append((record.name, name))
        return out

    def cancel(self, qid: str) -> bool:
        """Kill a job's wrapper and processes; False if the job is unknown."""
        record = self.jobs / qid
        if not record.is_dir() or not self._own(record):
            return False
        if (record / "exit_code").exists():
            return True
        _write_atomic(record / "cancelled", f"{time.time()}\n")
        groups = []
        for name in ("child_pid", "pid"):
            if _recorded_alive(record / name):
                groups.append(int((record / name).read_text().split()[0]))
        for pgid in groups:
            _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + _TERM_GRACE_S
        while any(_group_alive(g) for g in groups) and time.monotonic() < deadline:
            time.sleep(0.1)
        # look again: a job started just before the cancel may have had its pid recorded
        # only now, and it must not outlive its wrapper (it may ignore SIGTERM)
        for name in ("child_pid", "pid"):
            if _recorded_alive(record / name):
                groups.append(int((record / name).read_text().split()[0]))
        for pgid in dict.fromkeys(groups):
            _signal_group(pgid, signal.SIGKILL)
        return True

    # ------------------------------------------------------------------ the wrapper

    def run_wrapper(self, qid: str) -> int:
        """Body of the detached wrapper: wait for cores, run the script, record the exit."""
        record = self.jobs / qid
        meta = json.loads((record / "meta.json").read_text())
        child: subprocess.Popen | None = None
        spawning = False  # between starting the job and recording its pid
        term_pending = False
        if not (record / "pid").exists():
            # the submitter died before recording us: without this the job looks vanished
            _record_pid(record / "pid", os.getpid())

        def on_term(signum: int, frame: object) -> None:
            nonlocal term_pending
            if spawning:
                # the job may exist already with no pid on record: exiting now would leave
                # it running untracked, so remember the cancel until its pid is recorded
                term_pending = True
            elif child is not None:
                # forward a cancel to the job's own session, then let the wait below finish
                _signal_group(child.pid, signal.SIGTERM)
            else:
                raise SystemExit(143)

        signal.signal(signal.SIGTERM, on_term)
        if meta["cores"] > meta["capacity"]:
            msg = f"job asks for {meta['cores']} cores; partition {meta['partition']!r} has {meta['capacity']}\n"
            Path(meta["cwd"], meta["stderr"]).write_text(msg)
            _write_atomic(record / "exit_code", "125\n")
            self.touch_change_marker()
            return 125
        cores_dir = Path(meta.get("cores_dir") or self.cores_dir)
        slots = _acquire_cores(cores_dir, meta["capacity"], meta["cores"])
        _write_atomic(record / "started", f"{time.time()}\n")
        _test_delay(SPAWN_DELAY_ENV)
        spawning = True
        with (
            open(Path(meta["cwd"], meta["stdout"]), "ab") as out,
            open(Path(meta["cwd"], meta["stderr"]), "ab") as err,
        ):
            child = subprocess.Popen(
                ["bash", meta["script"]],
                cwd=meta["cwd"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own group: cancel/timeout kill it, not us
                pass_fds=[fh.fileno() for fh in slots],  # cores stay taken while it lives
                # a packed allocation touches this after each chunk (expyre.allocation), so
                # the driver learns of a finished chunk as of a finished job
                env={**os.environ, CHANGE_MARKER_ENV: str(self.dir)},
            )
        _test_delay(RECORD_DELAY_ENV)
        _record_pid(record / "child_pid", child.pid)
        spawning = False
        if term_pending:
            _signal_group(child.pid, signal.SIGTERM)
        for fh in slots:
            fh.close()
        try:
            code = child.wait(timeout=meta["time_s"])
        except subprocess.TimeoutExpired:
            _write_atomic(record / "timeout", f"{time.time()}\n")
            _signal_group(child.pid, signal.SIGTERM)
            try:
                code = child.wait(timeout=_TERM_GRACE_S)
            except subprocess.TimeoutExpired:
                _signal_group(child.pid, signal.SIGKILL)
                code = child.wait()
        _write_atomic(record / "exit_code", f"{code}\n")
        self.touch_change_marker()
        return 0

    def touch_change_marker(self) -> None:
        """Bump the queue directory's mtime: a waiting driver polls at once instead of later."""
        with contextlib.suppress(OSError):
            os.utime(self.dir)


def _acquire_cores(cores_dir: Path, capacity: int, cores: int) -> list:
    """Block until ``cores`` of the locks ``core0`` .. ``core<capacity-1>`` are ours.

    Returns the open lock files: the open descriptors *are* the locks.
    """
    _private_cores_dir(cores_dir)
    held = []
    with open(cores_dir / "admission.lock", "a") as admission:
        fcntl.flock(admission, fcntl.LOCK_EX)  # one job at a time takes cores
        while len(held) < cores:
            for i in range(capacity):
                if len(held) == cores:
                    break
                path = cores_dir / f"core{i}.lock"
                if any(fh.name == str(path) for fh in held):
                    continue
                fh = open(path, "a")  # noqa: SIM115 - kept open: the open fd *is* the lock
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    held.append(fh)
                except BlockingIOError:
                    fh.close()
            if len(held) < cores:
                # a short fixed wait, so a job starts within ~20 ms of a core freeing; only
                # the one job holding the admission lock polls, the others block in flock
                time.sleep(_CORE_POLL_S)
    return held


def job_state(record: Path) -> str | None:
    """State of one job record: queued, running, completed, failed, timeout, cancelled, vanished.

    A job whose processes all vanished without recording an exit (e.g. ``kill -9`` of the
    wrapper and the job, a reboot) is ``vanished``; None means no such job.
    """
    if not (record / "meta.json").exists():
        return None
    if (record / "exit_code").exists():
        if (record / "cancelled").exists():
            return "cancelled"
        if (record / "timeout").exists():
            return "timeout"
        code = (record / "exit_code").read_text().strip()
        return "completed" if code == "0" else "failed"
    alive = _recorded_alive(record / "pid")
    if not alive and (record / "child_pid").exists():
        alive = _group_alive(int((record / "child_pid").read_text().split()[0]))
    if alive:
        return "running" if (record / "started").exists() else "queued"
    # no process left and no exit recorded: the machine or the launcher died under the job
    # (reboot, kill -9, out-of-memory killer); the work itself did not fail
    return "cancelled" if (record / "cancelled").exists() else "vanished"


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m expyre.localqueue", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--queue-dir", required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("submit").add_argument("script")
    sub.add_parser("status").add_argument("ids", nargs="*")
    sub.add_parser("cancel").add_argument("ids", nargs="*")
    sub.add_parser("list").add_argument("--name-prefix", default="")
    sub.add_parser("_run").add_argument("id")
    args = parser.parse_args(argv)
    queue = LocalQueue(args.queue_dir)
    if args.command == "submit":
        print(queue.submit(args.script, os.getcwd()))
    elif args.command == "status":
        for qid in args.ids:
            state = queue.state(qid)
            if state is not None:
                print(qid, state)
    elif args.command == "cancel":
        unknown = [qid for qid in args.ids if not queue.cancel(qid)]
        if unknown:
            print(f"unknown job id(s): {' '.join(unknown)}", file=sys.stderr)
            return 1
    elif args.command == "list":
        for qid, name in queue.list(args.name_prefix):
            print(qid, name)
    elif args.command == "_run":
        return queue.run_wrapper(args.id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
