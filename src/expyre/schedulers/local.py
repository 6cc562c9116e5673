"""The ``local`` scheduler: pure translation for :mod:`expyre.localqueue`.

Like every scheduler it only builds header lines and argv lists and parses output; the
:class:`expyre.system.System` runs them. The queue's own state lives in ``queue_dir``.
"""

from __future__ import annotations

import shlex
from typing import Any

from expyre.schedulers.base import JobRequest, QueueState, Scheduler
from expyre.schedulers.legacy import LegacyCommands
from expyre.units import format_time

__all__ = ["Local", "LocalScheduler"]

_STATES = {
    "queued": QueueState.QUEUED,
    "running": QueueState.RUNNING,
    "completed": QueueState.COMPLETED,
    "failed": QueueState.FAILED,
    "timeout": QueueState.TIMEOUT,
    "cancelled": QueueState.CANCELLED,
    "vanished": QueueState.NODE_FAIL,  # its processes died with no exit recorded (reboot, kill -9)
}


class LocalScheduler(Scheduler):
    """Scheduler for the embedded local queue.

    Parameters
    ----------
    queue_dir : str
        Directory of the queue's records (as seen where the jobs run).
    python_cmd : str
        Shell words starting Python where the jobs run (``expyre`` must be importable).
    partition_cores : dict of str to int
        Cores of each partition: the most the queue runs at once in that partition.
    setup_commands : list of str
        The system's ``commands`` (shell lines such as ``source venv/bin/activate``). The
        queue's own commands (submit, status, cancel, list) are ``python_cmd -m
        expyre.localqueue``, so they need the same environment as the job's Python: they
        run in ``bash -c`` after these lines, whose stdout goes to stderr so that it is
        never read as the queue's answer. Unlike Slurm's or SGE's commands, which need no
        Python, every queue command here pays for these lines (keep them quick).
    """

    name = "local"
    directive = "#LOCAL"

    def __init__(
        self,
        queue_dir: str,
        python_cmd: str = "python3",
        partition_cores: dict[str, int] | None = None,
        setup_commands: list[str] | None = None,
    ) -> None:
        self.queue_dir = queue_dir
        self.python_argv = shlex.split(python_cmd)
        self.partition_cores = dict(partition_cores or {})
        self.setup_commands = list(setup_commands or [])

    def _tool(self, *args: str) -> list[str]:
        argv = [*self.python_argv, "-m", "expyre.localqueue", "--queue-dir", self.queue_dir, *args]
        if not self.setup_commands:
            return argv
        # a group, not a subshell: what the lines export stays for the exec'd python
        setup = "\n".join(["{", *self.setup_commands, "} >&2"])
        return ["bash", "-c", f"{setup}\nexec {shlex.join(argv)}"]

    def default_header(self, request: JobRequest) -> list[str]:
        capacity = self.partition_cores.get(request.partition, request.num_cores_per_node)
        options = {
            "job-name": request.job_name,
            "partition": request.partition,
            "capacity": capacity,
            "cores": request.num_cores,
            "time": request.max_time_s,
            "stdout": request.stdout,
            "stderr": request.stderr,
        }
        return [
            f"{self.directive} --{key}={shlex.quote(str(value))}"
            for key, value in options.items()
            if value is not None
        ]

    def format_time_limit(self, seconds: int) -> str:
        # the local queue reads any form expyre.units.parse_time accepts; keep D-HH:MM:SS
        return format_time(int(seconds))

    def submit_command(self, script_path: str, job_dir: str) -> list[str]:
        return self._tool("submit", script_path)

    def parse_submit_output(self, stdout: str) -> str:
        words = stdout.split()
        if len(words) != 1 or not words[0].isdigit():
            raise ValueError(f"local queue submit printed {stdout!r}, expected one job id")
        return words[0]

    def status_command(self, remote_ids: list[str]) -> list[str]:
        return self._tool("status", *remote_ids)

    def parse_status_output(self, stdout: str, remote_ids: list[str]) -> dict[str, QueueState]:
        wanted = set(remote_ids)
        states = {}
        for line in stdout.splitlines():
            words = line.split()
            if len(words) == 2 and words[0] in wanted:
                states[words[0]] = _STATES.get(words[1], QueueState.UNKNOWN)
        return states

    def change_marker(self) -> str | None:
        # the queue's wrapper touches its directory after recording a job's exit
        return self.queue_dir

    def cancel_command(self, remote_ids: list[str]) -> list[str]:
        return self._tool("cancel", *remote_ids)

    def find_by_name_command(self, job_name_prefix: str) -> list[str] | None:
        return self._tool("list", "--name-prefix", job_name_prefix)

    def parse_find_by_name_output(self, stdout: str, job_name_prefix: str) -> dict[str, str]:
        found = {}
        for line in stdout.splitlines():
            words = line.split(maxsplit=1)
            if len(words) == 2 and words[1].startswith(job_name_prefix):
                found[words[1]] = words[0]
        return found


class Local(LegacyCommands, LocalScheduler):
    """:class:`LocalScheduler` under its expyre-wfl 0.1.6 name, with 0.1.6's ``submit``,
    ``status``, ``cancel`` (see :mod:`expyre.schedulers.legacy`; the local queue has no
    holds). Made without a ``queue_dir``, it is the project's ``local`` system's queue."""

    def __init__(
        self,
        host: str | None = None,
        remsh_cmd: str | None = None,
        *,
        system: Any = None,
        **options: Any,
    ) -> None:
        if system is None and "queue_dir" not in options:
            from expyre.system import get_system  # system imports schedulers

            system = get_system("local")
            queue = system.scheduler
            options = {
                "queue_dir": queue.queue_dir,
                "python_cmd": shlex.join(queue.python_argv),
                "partition_cores": queue.partition_cores,
                "setup_commands": queue.setup_commands,
                **options,
            }
        super().__init__(host, remsh_cmd, system=system, **options)
