"""Slurm backend: ``#SBATCH`` header, ``sbatch``/``squeue``/``scancel``/``sacct`` command lines.

Pure translation (see :mod:`expyre.schedulers.base`). Choices that matter on real clusters:

- Status is ONE ``squeue --me -t all`` call per poll, whatever the number of jobs. ``--me``
  asks Slurm for the caller's uid, so it works with ``$USER`` unset and with a remote user
  name that differs from the local one. Listing the user's jobs instead of ``-j id,...``
  keeps the exit code meaningful: ``squeue -j`` fails when *all* ids have aged out of the
  controller, which must not be confused with "the controller is down".
- A job held by a user or admin is pending with reason ``JobHeld*``: reported as held.
- Accounting (asked about jobs that left ``squeue``): ``sacct`` from slurmdbd, falling back
  to ``sacct -c`` (the job-completion log) on clusters without slurmdbd, e.g. our CI.
"""

from __future__ import annotations

import re
import shlex

from expyre.schedulers._text import check_ids, directive_value, safe_job_name
from expyre.schedulers.base import JobRequest, QueueState, Scheduler, combine_states
from expyre.schedulers.legacy import LegacyCommands
from expyre.units import (
    format_time,
    time_to_HMS,  # noqa: F401 - 0.1.6 imported it from here
)

__all__ = ["Slurm", "SlurmScheduler", "slurm_state"]

#: Slurm's long job state names (squeue %T, sacct State) -> ours
_STATES = {
    "PENDING": QueueState.QUEUED,
    "CONFIGURING": QueueState.QUEUED,
    "REQUEUED": QueueState.QUEUED,
    "REQUEUE_FED": QueueState.QUEUED,
    "RESIZING": QueueState.QUEUED,
    "POWER_UP_NODE": QueueState.QUEUED,
    "REQUEUE_HOLD": QueueState.HELD,
    "RESV_DEL_HOLD": QueueState.HELD,  # its reservation was deleted
    "SPECIAL_EXIT": QueueState.HELD,  # requeued held after a special exit code
    "SUSPENDED": QueueState.HELD,
    "STOPPED": QueueState.HELD,
    "RUNNING": QueueState.RUNNING,
    "COMPLETING": QueueState.RUNNING,
    "STAGE_OUT": QueueState.RUNNING,
    "SIGNALING": QueueState.RUNNING,
    "UPDATE_DB": QueueState.RUNNING,
    "COMPLETED": QueueState.COMPLETED,
    "FAILED": QueueState.FAILED,
    "BOOT_FAIL": QueueState.NODE_FAIL,
    "NODE_FAIL": QueueState.NODE_FAIL,
    "TIMEOUT": QueueState.TIMEOUT,
    "DEADLINE": QueueState.TIMEOUT,
    "CANCELLED": QueueState.CANCELLED,
    "PREEMPTED": QueueState.NODE_FAIL,  # the work is fine; it lost its node to another job
    "REVOKED": QueueState.CANCELLED,
    "OUT_OF_MEMORY": QueueState.OUT_OF_MEMORY,
}

#: pending reasons meaning "will not start by itself"
_HELD_REASONS = ("JobHeldUser", "JobHeldAdmin", "DependencyNeverSatisfied")

_ARRAY_TASK = re.compile(r"(\d+)_(?:\d+|\[[^\]]*\])")
_SEP = "|"  # squeue -o field separator; never in a job id, and our job names avoid it


def slurm_state(native: str, reason: str = "") -> QueueState:
    """Map a Slurm job state (and pending reason) to a :class:`QueueState`.

    Parameters
    ----------
    native : str
        State as printed by ``squeue -o %T`` or ``sacct -o State`` (``"CANCELLED by 0"``,
        ``"PD"``-style short codes are not used by this backend).
    reason : str
        Pending reason (``squeue -o %r``), used to tell held from queued.
    """
    word = native.strip().split(" ", 1)[0].upper().rstrip("+")
    state = _STATES.get(word, QueueState.UNKNOWN)
    if state is QueueState.QUEUED and reason.strip().startswith(_HELD_REASONS):
        return QueueState.HELD
    return state


class SlurmScheduler(Scheduler):
    """Slurm backend (``scheduler: "slurm"`` in config.json).

    Default header: job name, partition, time limit, ``--nodes`` and
    ``--ntasks-per-node`` (so the allocation matches ``EXPYRE_NUM_CORES_PER_NODE``),
    memory per node when the request has one, stdout and stderr.
    """

    name = "slurm"
    directive = "#SBATCH"

    def default_header(self, request: JobRequest) -> list[str]:
        d = self.directive

        def path(value: str, what: str) -> str:
            # '%' starts a Slurm filename pattern (%j, %x, ...); '%%' is a literal '%'
            return directive_value(value, what, d).replace("%", "%%")

        lines = [
            f"{d} --job-name={safe_job_name(request.job_name)}",
            f"{d} --partition={directive_value(request.partition, 'partition', d)}",
            f"{d} --nodes={int(request.num_nodes)}",
            f"{d} --ntasks-per-node={int(request.num_cores_per_node)}",
        ]
        if request.max_time_s is not None:
            lines.append(f"{d} --time={self.format_time_limit(request.max_time_s)}")
        if request.max_mem_kB:
            lines.append(f"{d} --mem={int(request.max_mem_kB)}K")
        lines += [
            f"{d} --output={path(request.stdout, 'stdout path')}",
            f"{d} --error={path(request.stderr, 'stderr path')}",
        ]
        return lines

    def format_time_limit(self, seconds: int) -> str:
        # Slurm reads D-HH:MM:SS; it rounds limits up to whole minutes, and at least one
        return format_time(max(60, int(seconds)))

    def submit_command(self, script_path: str, job_dir: str) -> list[str]:
        return ["sbatch", "--parsable", script_path]

    def parse_submit_output(self, stdout: str) -> str:
        # --parsable prints "<id>" or "<id>;<cluster>"; accept the chatty form too
        for line in reversed(stdout.strip().splitlines()):
            m = re.fullmatch(r"\s*(\d+)(?:;\S+)?\s*", line) or re.search(
                r"Submitted batch job (\d+)", line
            )
            if m:
                return m.group(1)
        raise ValueError(f"sbatch printed no job id (stdout {stdout!r}); is Slurm working here?")

    def status_command(self, remote_ids: list[str]) -> list[str]:
        check_ids(remote_ids, self.name)
        return ["squeue", "--me", "--noheader", "--states=all", f"--format=%i{_SEP}%T{_SEP}%r"]

    def parse_status_output(self, stdout: str, remote_ids: list[str]) -> dict[str, QueueState]:
        wanted = set(map(str, remote_ids))
        states: dict[str, QueueState] = {}
        tasks: dict[str, list[QueueState]] = {}
        for line in stdout.splitlines():
            fields = line.strip().split(_SEP)
            if len(fields) < 2:
                continue
            state = slurm_state(fields[1], fields[2] if len(fields) > 2 else "")
            if fields[0] in wanted:
                states[fields[0]] = state
                continue
            # array tasks: "123_4" (one task) or "123_[5-9%2]" (tasks still pending)
            array = _ARRAY_TASK.fullmatch(fields[0])
            if array and array.group(1) in wanted:
                tasks.setdefault(array.group(1), []).append(state)
        states.update({job_id: combine_states(s) for job_id, s in tasks.items()})
        return states

    def array_header(self, num_tasks: int) -> list[str]:
        return [f"{self.directive} --array=0-{int(num_tasks) - 1}"]

    def max_array_size_command(self) -> list[str] | None:
        return ["scontrol", "show", "config"]

    def parse_max_array_size(self, stdout: str) -> int | None:
        # "MaxArraySize = 1001": task indices 0..1000, so at most 1001 tasks
        m = re.search(r"^\s*MaxArraySize\s*=\s*(\d+)", stdout, re.MULTILINE)
        return int(m.group(1)) if m and int(m.group(1)) > 0 else None

    def hold_command(self, remote_ids: list[str]) -> list[str]:
        return ["scontrol", "hold", *check_ids(remote_ids, self.name)]

    def release_command(self, remote_ids: list[str]) -> list[str]:
        return ["scontrol", "release", *check_ids(remote_ids, self.name)]

    def cancel_command(self, remote_ids: list[str]) -> list[str]:
        return ["scancel", *check_ids(remote_ids, self.name)]

    def find_by_name_command(self, job_name_prefix: str) -> list[str] | None:
        return ["squeue", "--me", "--noheader", "--states=all", f"--format=%i{_SEP}%j"]

    def parse_find_by_name_output(self, stdout: str, job_name_prefix: str) -> dict[str, str]:
        prefix = safe_job_name(job_name_prefix)
        found = {}
        for line in stdout.splitlines():
            job_id, sep, name = line.strip().partition(_SEP)
            if sep and name.startswith(prefix):
                found[name] = job_id
        return found

    def accounting_command(self, remote_ids: list[str]) -> list[str] | None:
        ids = ",".join(check_ids(remote_ids, self.name))
        query = f"-X -n -P -o JobID,State,ExitCode -j {shlex.quote(ids)}"
        # slurmdbd first; without it plain sacct fails and -c reads the jobcomp log.
        # Always exit 0: accounting is best effort, its absence is not an error.
        script = f"sacct {query} 2>/dev/null || sacct -c {query} || true"
        return ["sh", "-c", script]

    def parse_accounting_output(self, stdout: str, remote_ids: list[str]) -> dict[str, QueueState]:
        wanted = set(map(str, remote_ids))
        states: dict[str, QueueState] = {}
        for line in stdout.splitlines():
            fields = line.strip().split(_SEP)
            if len(fields) >= 2 and fields[0] in wanted and fields[1].strip():
                state = slurm_state(fields[1])
                if state.is_finished:
                    states[fields[0]] = state
        return states


class Slurm(LegacyCommands, SlurmScheduler):
    """:class:`SlurmScheduler` under its expyre-wfl 0.1.6 name, with 0.1.6's ``submit``,
    ``status``, ``hold``, ``release`` and ``cancel`` (see :mod:`expyre.schedulers.legacy`)."""
