"""The scheduler protocol: pure translation between expyre and one batch system.

A scheduler never runs anything. It builds header lines and command lines (argv lists)
and parses the text those commands print into :class:`QueueState` values. The
:class:`expyre.system.System` runs what a scheduler builds, through its transport. This is
why every backend can be unit-tested on recorded outputs and the very same code runs
against a live queue.
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass

from expyre.schedulers._text import hours_minutes_seconds


class QueueState(enum.Enum):
    """What the batch system says about one job, mapped from its native state codes."""

    QUEUED = "queued"  # pending, waiting for resources
    HELD = "held"  # held by user/admin/dependency, will not start by itself
    RUNNING = "running"  # running, or completing/being set up
    COMPLETED = "completed"  # finished, exit code 0 (as far as the scheduler knows)
    FAILED = "failed"  # finished with non-zero exit code
    TIMEOUT = "timeout"  # killed for exceeding its time limit
    CANCELLED = "cancelled"  # cancelled by user or admin
    OUT_OF_MEMORY = "out_of_memory"  # killed for exceeding its memory limit
    NODE_FAIL = "node_fail"  # killed because its node failed
    UNKNOWN = "unknown"  # the scheduler printed a state we do not recognise

    @property
    def is_finished(self) -> bool:
        """True when the job has left the running/waiting states for good."""
        # UNKNOWN counts as live: a state we cannot read must never get a job declared dead
        return self not in (
            QueueState.QUEUED,
            QueueState.HELD,
            QueueState.RUNNING,
            QueueState.UNKNOWN,
        )

    @property
    def was_killed(self) -> bool:
        """True when the queue (not the job's own code) ended the job."""
        return self in (
            QueueState.TIMEOUT,
            QueueState.CANCELLED,
            QueueState.OUT_OF_MEMORY,
            QueueState.NODE_FAIL,
        )


@dataclass(frozen=True)
class JobRequest:
    """Everything a scheduler needs to write a job's header lines.

    Attributes
    ----------
    job_name : str
        Scheduler-visible job name; carries the expyre job id (exactly-once submission).
    partition : str
        Partition (Slurm) or queue (SGE, PBS) chosen by resource selection.
    num_nodes : int
        Number of whole nodes requested.
    num_cores : int
        Total number of cores requested.
    num_cores_per_node : int
        Cores used on each node.
    max_time_s : int | None
        Wall-time limit in seconds, or None for the partition's default.
    max_mem_kB : int | None
        Memory per node in kB, or None for the partition's default.
    stdout : str
        Path (as seen where the job runs) for the job's standard output.
    stderr : str
        Path (as seen where the job runs) for the job's standard error.
    """

    job_name: str
    partition: str
    num_nodes: int
    num_cores: int
    num_cores_per_node: int
    max_time_s: int | None
    max_mem_kB: int | None
    stdout: str
    stderr: str


_LIVE_ORDER = {"running": 0, "unknown": 1, "queued": 2, "held": 3}


def combine_states(states: list[QueueState]) -> QueueState:
    """One state for a job array from the states of its tasks.

    Live while any task is live (running first, then unknown, queued, held); once all ended,
    the first state that says the queue killed a task, else failed, else completed -- so a
    ``scancel`` of the array reads as cancelled.
    """
    live = [s for s in states if not s.is_finished]
    if live:
        return min(live, key=lambda s: _LIVE_ORDER[s.value])
    for wanted in (lambda s: s.was_killed, lambda s: s == QueueState.FAILED):
        found = next((s for s in states if wanted(s)), None)
        if found is not None:
            return found
    return states[0] if states else QueueState.UNKNOWN


class Scheduler(abc.ABC):
    """Pure translation layer for one batch system; see module docstring."""

    #: name used in config.json's ``scheduler`` key
    name: str = ""
    #: shell prefix of a header line (``#SBATCH``, ``#$``, ``#PBS``, or ``#LOCAL``)
    directive: str = ""

    @abc.abstractmethod
    def default_header(self, request: JobRequest) -> list[str]:
        """Header lines requesting name, partition, time, nodes/cores, stdout/stderr."""

    def format_time_limit(self, seconds: int) -> str:
        """A wall-time limit as this scheduler's header lines accept it.

        ``H:MM:SS`` with unbounded hours by default: SGE's ``h_rt`` and PBS's ``walltime``
        have no day prefix (2 days is ``48:00:00``); Slurm overrides this.

        Parameters
        ----------
        seconds : int
            Time limit in seconds.
        """
        return hours_minutes_seconds(seconds)

    @abc.abstractmethod
    def submit_command(self, script_path: str, job_dir: str) -> list[str]:
        """argv that submits ``script_path`` (run with current directory ``job_dir``)."""

    @abc.abstractmethod
    def parse_submit_output(self, stdout: str) -> str:
        """Extract the scheduler's job id from the submit command's stdout.

        Raises
        ------
        ValueError
            If no job id can be found; the message quotes the output.
        """

    @abc.abstractmethod
    def status_command(self, remote_ids: list[str]) -> list[str]:
        """argv asking the state of *all* of ``remote_ids`` in one call."""

    @abc.abstractmethod
    def parse_status_output(self, stdout: str, remote_ids: list[str]) -> dict[str, QueueState]:
        """Map the status command's output to states; ids absent from the queue are omitted."""

    @abc.abstractmethod
    def cancel_command(self, remote_ids: list[str]) -> list[str]:
        """argv cancelling all of ``remote_ids``."""

    def hold_command(self, remote_ids: list[str]) -> list[str]:
        """argv holding queued jobs (they stay queued, not started, until released).

        Raises
        ------
        NotImplementedError
            For queues without holds (the local queue).
        """
        raise NotImplementedError(f"scheduler {self.name!r} cannot hold jobs")

    def release_command(self, remote_ids: list[str]) -> list[str]:
        """argv releasing held jobs (see :meth:`hold_command`)."""
        raise NotImplementedError(f"scheduler {self.name!r} cannot hold or release jobs")

    def find_by_name_command(self, job_name_prefix: str) -> list[str] | None:
        """argv listing queued jobs whose names start with a prefix, or None if unsupported.

        Used after a driver was killed between "submitted" and "recorded" to find the job
        in the queue instead of submitting it again.
        """
        return None

    def parse_find_by_name_output(self, stdout: str, job_name_prefix: str) -> dict[str, str]:
        """Map job name -> scheduler id from the output of :meth:`find_by_name_command`."""
        return {}

    def array_header(self, num_tasks: int) -> list[str]:
        """Header lines making the script a job array of ``num_tasks`` tasks (one submit).

        Raises
        ------
        NotImplementedError
            For schedulers without job arrays (the local queue).
        """
        raise NotImplementedError(f"scheduler {self.name!r} has no job arrays")

    def max_array_size_command(self) -> list[str] | None:
        """argv printing the site's largest job array, or None if it cannot be asked."""
        return None

    def parse_max_array_size(self, stdout: str) -> int | None:
        """Most tasks one array may have at this site (None: no limit found)."""
        return None

    def change_marker(self) -> str | None:
        """A path whose modification time changes whenever one of this queue's jobs ends.

        None (the default) when the queue offers no such thing; the driver then only polls.
        The path is where the jobs run, so it is useful only for systems on this machine.
        """
        return None

    def accounting_command(self, remote_ids: list[str]) -> list[str] | None:
        """argv asking accounting (sacct, qacct) about finished jobs, or None if unavailable."""
        return None

    def parse_accounting_output(self, stdout: str, remote_ids: list[str]) -> dict[str, QueueState]:
        """Map the accounting command's output to final states (ids not found are omitted)."""
        return {}
