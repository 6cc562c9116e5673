"""Grid Engine backend (SGE, Son of Grid Engine, OGS): ``#$`` header, ``qsub``/``qstat``/``qdel``/``qacct``.

Pure translation (see :mod:`expyre.schedulers.base`). Notes:

- Status is ONE ``qstat -xml`` per poll. Without ``-u`` qstat lists the calling user's jobs
  (its built-in default is ``-u $user``, resolved from the uid, not from ``$USER``).
- A job leaves ``qstat`` as soon as it ends; how it ended is only in the accounting file,
  read with ``qacct -j`` (one call per id, wrapped in a single ``sh -c`` so it is still one
  transport round trip). ``failed 37`` is a limit enforced by qmaster (h_rt), ``failed 100``
  with exit status 137 a job killed by signal (``qdel``).
- Cores are requested through a parallel environment, ``smp`` by default (allocation rule
  ``$pe_slots``). Sites name theirs differently: pass ``parallel_environment`` or add a
  ``#$ -pe <name> {num_cores}`` line to the system's ``header`` (the later line wins).
"""

from __future__ import annotations

import re
import shlex
import xml.etree.ElementTree as ET

from expyre.schedulers._text import (
    check_ids,
    directive_value,
    hours_minutes_seconds,
    safe_job_name,
)
from expyre.schedulers.base import JobRequest, QueueState, Scheduler, combine_states
from expyre.schedulers.legacy import LegacyCommands
from expyre.units import time_to_HMS  # noqa: F401 - 0.1.6 imported it from here

__all__ = ["SGE", "SGEScheduler", "sge_state"]

# qacct "failed" codes that mean the queue ended the job
_FAILED_LIMIT = 37  # "qmaster enforced h_rt, h_cpu, or h_vmem limit"
_FAILED_AFTER_JOB = 100  # "assumedly after job": killed by a signal (qdel, execd limit)
_SIGKILL_STATUS = 137


def sge_state(code: str) -> QueueState:
    """Map a qstat state code (``qw``, ``hqw``, ``r``, ``dr``, ``Eqw``, ...) to a QueueState.

    Letters: d deletion, E error, h hold, s/S/T suspended, r running, t transferring,
    R restarted, q queued, w waiting.
    """
    if "d" in code:
        return QueueState.CANCELLED
    if "E" in code:
        # error state: the job will never run unless an admin clears it (qmod -cj)
        return QueueState.FAILED
    if "h" in code or any(c in code for c in "sST"):
        return QueueState.HELD
    if "r" in code or "t" in code:
        return QueueState.RUNNING
    if "q" in code or "w" in code:
        return QueueState.QUEUED
    return QueueState.UNKNOWN


class SGEScheduler(Scheduler):
    """Grid Engine backend (``scheduler: "sge"`` in config.json).

    Parameters
    ----------
    parallel_environment : str
        Name of the parallel environment used to request cores (``#$ -pe <name> <cores>``).
    """

    name = "sge"
    directive = "#$"

    def __init__(self, parallel_environment: str = "smp") -> None:
        self.parallel_environment = parallel_environment

    def default_header(self, request: JobRequest) -> list[str]:
        d = self.directive
        lines = [
            f"{d} -N {safe_job_name(request.job_name)}",
            f"{d} -q {directive_value(request.partition, 'queue', d)}",
        ]
        if request.num_cores > 1:  # one core needs no parallel environment (sites lacking one work)
            pe = directive_value(self.parallel_environment, "parallel environment", d)
            lines.append(f"{d} -pe {pe} {int(request.num_cores)}")
        if request.max_time_s is not None:
            lines.append(f"{d} -l h_rt={hours_minutes_seconds(request.max_time_s)}")
        lines += [
            f"{d} -o {directive_value(request.stdout, 'stdout path', d)}",
            f"{d} -e {directive_value(request.stderr, 'stderr path', d)}",
            f"{d} -cwd",
            f"{d} -S /bin/bash",
            f"{d} -r n",  # never rerun silently: expyre decides about resubmission
        ]
        return lines

    def submit_command(self, script_path: str, job_dir: str) -> list[str]:
        return ["qsub", "-terse", script_path]

    def parse_submit_output(self, stdout: str) -> str:
        for line in reversed(stdout.strip().splitlines()):
            # -terse: "123" (arrays "123.1-10:1"); without it "Your job 123 (...) has been..."
            m = re.fullmatch(r"\s*(\d+)(?:\.\S+)?\s*", line) or re.search(r"Your job (\d+)", line)
            if m:
                return m.group(1)
        raise ValueError(f"qsub printed no job id (stdout {stdout!r}); is Grid Engine working?")

    def status_command(self, remote_ids: list[str]) -> list[str]:
        check_ids(remote_ids, self.name)
        return ["qstat", "-xml"]

    def parse_status_output(self, stdout: str, remote_ids: list[str]) -> dict[str, QueueState]:
        wanted = set(map(str, remote_ids))
        # an array job has one entry per running task (and one for its pending tasks), all
        # with the array's job number: their states are combined
        tasks: dict[str, list[QueueState]] = {}
        for job_id, _, state in _qstat_jobs(stdout):
            if job_id in wanted:
                tasks.setdefault(job_id, []).append(sge_state(state))
        return {job_id: combine_states(states) for job_id, states in tasks.items()}

    def array_header(self, num_tasks: int) -> list[str]:
        return [f"{self.directive} -t 1-{int(num_tasks)}"]  # SGE task ids start at 1

    def max_array_size_command(self) -> list[str] | None:
        return ["qconf", "-sconf"]

    def parse_max_array_size(self, stdout: str) -> int | None:
        # "max_aj_tasks 75000"; 0 means no limit
        m = re.search(r"^max_aj_tasks\s+(\d+)", stdout, re.MULTILINE)
        return int(m.group(1)) if m and int(m.group(1)) > 0 else None

    def hold_command(self, remote_ids: list[str]) -> list[str]:
        return ["qhold", *check_ids(remote_ids, self.name)]

    def release_command(self, remote_ids: list[str]) -> list[str]:
        return ["qrls", *check_ids(remote_ids, self.name)]

    def cancel_command(self, remote_ids: list[str]) -> list[str]:
        return ["qdel", *check_ids(remote_ids, self.name)]

    def find_by_name_command(self, job_name_prefix: str) -> list[str] | None:
        return ["qstat", "-xml"]

    def parse_find_by_name_output(self, stdout: str, job_name_prefix: str) -> dict[str, str]:
        prefix = safe_job_name(job_name_prefix)
        return {name: job_id for job_id, name, _ in _qstat_jobs(stdout) if name.startswith(prefix)}

    def accounting_command(self, remote_ids: list[str]) -> list[str] | None:
        ids = " ".join(shlex.quote(i) for i in check_ids(remote_ids, self.name))
        # qacct takes one job per call; unknown ids print an error, which is not one for us
        return ["sh", "-c", f'for j in {ids}; do qacct -j "$j" 2>/dev/null; done; true']

    def parse_accounting_output(self, stdout: str, remote_ids: list[str]) -> dict[str, QueueState]:
        wanted = set(map(str, remote_ids))
        states: dict[str, QueueState] = {}
        for record in _qacct_records(stdout):
            job_id = record.get("jobnumber", "")
            if job_id in wanted:
                # a rescheduled job has several records; the last one is how it ended
                states[job_id] = _accounting_state(record)
        return states


def _qstat_jobs(xml_text: str) -> list[tuple[str, str, str]]:
    """(job id, name, state code) of every job in ``qstat -xml`` output."""
    if not xml_text.strip():
        return []
    try:
        root = ET.fromstring(xml_text)
    except ET.ParseError as exc:
        raise ValueError(
            f"qstat -xml printed text that is not XML ({exc}): {xml_text[:200]!r}"
        ) from exc
    jobs = []
    for job in root.iter("job_list"):
        number = (job.findtext("JB_job_number") or "").strip()
        if number:
            jobs.append(
                (number, (job.findtext("JB_name") or "").strip(), (job.findtext("state") or ""))
            )
    return jobs


def _qacct_records(text: str) -> list[dict[str, str]]:
    """Split ``qacct -j`` output into records of ``key -> value`` (first word of the line)."""
    records: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in text.splitlines():
        if line.startswith("====="):
            current = {}
            records.append(current)
            continue
        if current is None:
            continue
        key, _, value = line.partition(" ")
        if key:
            current[key] = value.strip()
    return records


def _accounting_state(record: dict[str, str]) -> QueueState:
    failed = _leading_int(record.get("failed", "0"))
    exit_status = _leading_int(record.get("exit_status", "0"))
    if failed == _FAILED_LIMIT:
        if "h_vmem" in record.get("category", "") and "h_rt" not in record.get("category", ""):
            return QueueState.OUT_OF_MEMORY
        return QueueState.TIMEOUT
    if failed == _FAILED_AFTER_JOB and exit_status == _SIGKILL_STATUS:
        return QueueState.CANCELLED
    if failed == 0 and exit_status == 0:
        return QueueState.COMPLETED
    return QueueState.FAILED


def _leading_int(text: str) -> int:
    m = re.match(r"\s*(-?\d+)", text)
    return int(m.group(1)) if m else -1


class SGE(LegacyCommands, SGEScheduler):
    """:class:`SGEScheduler` under its expyre-wfl 0.1.6 name, with 0.1.6's ``submit``,
    ``status``, ``hold``, ``release`` and ``cancel`` (see :mod:`expyre.schedulers.legacy`)."""
