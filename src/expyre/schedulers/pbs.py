"""PBS Professional / OpenPBS backend: ``#PBS`` header, ``qsub``/``qstat -f -F json``/``qdel``.

Pure translation (see :mod:`expyre.schedulers.base`). There is no PBS server in our CI, so
this backend is tested on outputs whose format is taken from the OpenPBS documentation and
sources (``qstat.1B`` for ``-F json``, ``src/include/job.h`` for exit codes). Notes:

- Status is ONE ``qstat -f -F json -x <ids...>`` per poll. ``-x`` keeps finished jobs
  visible (state ``F`` with ``Exit_status``) where the server keeps job history. Ids the
  server no longer knows make qstat exit non-zero while still printing the others, so the
  command is wrapped in ``sh -c`` to drop exactly those "Unknown Job Id" complaints: any
  other error (server down) still fails the call, and is never mistaken for "no jobs".
- PBS Pro exit codes: negative ``JOB_EXEC_*`` values are the server's own verdicts (-29
  walltime, -27/-26 memory, -20/-14 lost node); ``256 + n`` means killed by signal ``n``.
- Jobs start in ``$HOME``; the job script must ``cd`` to its directory (expyre's does).
"""

from __future__ import annotations

import json
import re
import shlex

from expyre.schedulers._text import (
    check_ids,
    directive_value,
    hours_minutes_seconds,
    safe_job_name,
)
from expyre.schedulers.base import JobRequest, QueueState, Scheduler
from expyre.schedulers.legacy import LegacyCommands
from expyre.units import time_to_HMS  # noqa: F401 - 0.1.6 imported it from here

__all__ = ["PBS", "PBSScheduler", "pbs_state"]

_LIVE_STATES = {
    "Q": QueueState.QUEUED,
    "W": QueueState.QUEUED,  # waiting for its requested start time
    "T": QueueState.QUEUED,  # being moved
    "H": QueueState.HELD,
    "S": QueueState.HELD,  # suspended
    "U": QueueState.HELD,  # suspended (cycle harvesting)
    "R": QueueState.RUNNING,
    "E": QueueState.RUNNING,  # exiting after having run
    "B": QueueState.RUNNING,  # array job with running subjobs
}
_FINISHED_STATES = ("F", "X")

# JOB_EXEC_* codes (OpenPBS src/include/job.h)
_EXIT_TIMEOUT = {-29, -28}  # KILL_WALLTIME, KILL_CPUT
_EXIT_MEMORY = {-27, -26}  # KILL_MEM, KILL_VMEM
_EXIT_NODE_FAIL = {-20, -14}  # RERUN_MS_FAIL, RERUN_SIS_FAIL
_SIGNAL_BASE = 256  # Exit_status = 256 + signal for jobs PBS killed by a signal

# qstat complaints about ids that are simply gone (not errors for a status poll)
_GONE_PATTERNS = ("Unknown Job Id", "Job has finished")


def pbs_state(job: dict) -> QueueState:
    """Map one job's ``qstat -f -F json`` attributes to a :class:`QueueState`.

    Parameters
    ----------
    job : dict
        Attributes of one job (``job_state``, ``Exit_status``, ``resources_used``,
        ``Resource_List``).
    """
    code = str(job.get("job_state", "")).strip()
    if code in _LIVE_STATES:
        return _LIVE_STATES[code]
    if code not in _FINISHED_STATES:
        return QueueState.UNKNOWN
    if "Exit_status" not in job:
        return QueueState.CANCELLED  # deleted before it ever ran
    try:
        status = int(job["Exit_status"])
    except (TypeError, ValueError):
        return QueueState.UNKNOWN
    if status == 0:
        return QueueState.COMPLETED
    if status in _EXIT_TIMEOUT:
        return QueueState.TIMEOUT
    if status in _EXIT_MEMORY:
        return QueueState.OUT_OF_MEMORY
    if status in _EXIT_NODE_FAIL:
        return QueueState.NODE_FAIL
    if status > _SIGNAL_BASE:
        # older PBS Pro kill jobs over walltime with SIGTERM (271): tell by the time used
        used = _seconds(job.get("resources_used", {}).get("walltime"))
        limit = _seconds(job.get("Resource_List", {}).get("walltime"))
        if used is not None and limit is not None and used >= limit:
            return QueueState.TIMEOUT
        return QueueState.CANCELLED
    return QueueState.FAILED


class PBSScheduler(Scheduler):
    """PBS Professional / OpenPBS backend (``scheduler: "pbs"`` in config.json).

    Default header: job name, queue, ``select=<nodes>:ncpus=<cores per node>:mpiprocs=...``
    (with ``mem`` when requested), walltime, stdout and stderr, not rerunnable.
    """

    name = "pbs"
    directive = "#PBS"

    def default_header(self, request: JobRequest) -> list[str]:
        d = self.directive
        cpn = int(request.num_cores_per_node)
        select = f"select={int(request.num_nodes)}:ncpus={cpn}:mpiprocs={cpn}"
        if request.max_mem_kB:
            select += f":mem={int(request.max_mem_kB)}kb"
        lines = [
            f"{d} -N {safe_job_name(request.job_name, max_len=236)}",
            f"{d} -q {directive_value(request.partition, 'queue', d)}",
            f"{d} -l {select}",
        ]
        if request.max_time_s is not None:
            lines.append(f"{d} -l walltime={hours_minutes_seconds(request.max_time_s)}")
        lines += [
            f"{d} -o {_path(request.stdout, 'stdout path')}",
            f"{d} -e {_path(request.stderr, 'stderr path')}",
            f"{d} -r n",
        ]
        return lines

    def submit_command(self, script_path: str, job_dir: str) -> list[str]:
        return ["qsub", script_path]

    def parse_submit_output(self, stdout: str) -> str:
        for line in reversed(stdout.strip().splitlines()):
            m = re.fullmatch(r"\s*(\d+(?:\[\d*\])?(?:\.[A-Za-z0-9_.-]+)?)\s*", line)
            if m:
                return m.group(1)
        raise ValueError(f"qsub printed no PBS job id (stdout {stdout!r}); is PBS working here?")

    def status_command(self, remote_ids: list[str]) -> list[str]:
        ids = " ".join(shlex.quote(i) for i in check_ids(remote_ids, self.name))
        ignore = " ".join(f"-e {shlex.quote(p)}" for p in _GONE_PATTERNS)
        # qstat's stdout goes straight out (fd 3); its stderr is filtered; the exit code is
        # non-zero only if some OTHER complaint was printed
        script = (
            f"{{ qstat -f -F json -x {ids} 2>&1 1>&3 | "
            f"{{ ! grep -v {ignore} -e '^[[:space:]]*$' >&2; }}; }} 3>&1"
        )
        return ["sh", "-c", script]

    def parse_status_output(self, stdout: str, remote_ids: list[str]) -> dict[str, QueueState]:
        jobs = _qstat_json_jobs(stdout)
        return {rid: pbs_state(jobs[key]) for rid, key in _match_ids(remote_ids, jobs).items()}

    def array_header(self, num_tasks: int) -> list[str]:
        # PBS Pro: "-J 0-N" (two tasks at least; a single chunk is submitted as a plain job);
        # the array's id is "123[]" and its state "B" while tasks run
        return [f"{self.directive} -J 0-{int(num_tasks) - 1}"]

    def max_array_size_command(self) -> list[str] | None:
        return ["qmgr", "-c", "list server max_array_size"]

    def parse_max_array_size(self, stdout: str) -> int | None:
        m = re.search(r"max_array_size\s*=\s*(\d+)", stdout)
        return int(m.group(1)) if m and int(m.group(1)) > 0 else None

    def hold_command(self, remote_ids: list[str]) -> list[str]:
        return ["qhold", *check_ids(remote_ids, self.name)]

    def release_command(self, remote_ids: list[str]) -> list[str]:
        return ["qrls", *check_ids(remote_ids, self.name)]

    def cancel_command(self, remote_ids: list[str]) -> list[str]:
        return ["qdel", *check_ids(remote_ids, self.name)]

    def find_by_name_command(self, job_name_prefix: str) -> list[str] | None:
        return ["qstat", "-f", "-F", "json"]

    def parse_find_by_name_output(self, stdout: str, job_name_prefix: str) -> dict[str, str]:
        prefix = safe_job_name(job_name_prefix, max_len=236)
        found = {}
        for job_id, job in _qstat_json_jobs(stdout).items():
            name = str(job.get("Job_Name", ""))
            if name.startswith(prefix):
                found[name] = job_id
        return found

    def accounting_command(self, remote_ids: list[str]) -> list[str] | None:
        # job history (qstat -x) is PBS's accounting view; tracejob needs server log access
        return self.status_command(remote_ids)

    def parse_accounting_output(self, stdout: str, remote_ids: list[str]) -> dict[str, QueueState]:
        states = self.parse_status_output(stdout, remote_ids)
        return {rid: state for rid, state in states.items() if state.is_finished}


def _path(value: str, what: str) -> str:
    # "-o host:path" syntax: a bare ':' in a path would be read as a host name
    if ":" in value:
        raise ValueError(
            f"{what} {value!r} contains ':', which PBS reads as 'host:path'; "
            "use a directory without ':'"
        )
    return directive_value(value, what, "#PBS")


def _match_ids(remote_ids: list[str], jobs: dict[str, dict]) -> dict[str, str]:
    """Map each wanted id to its key in ``jobs``; ``123`` and ``123.server`` are the same job."""
    by_number = {key.split(".", 1)[0]: key for key in jobs}
    matched = {}
    for rid in map(str, remote_ids):
        if rid in jobs:
            matched[rid] = rid
        elif rid.split(".", 1)[0] in by_number:
            matched[rid] = by_number[rid.split(".", 1)[0]]
    return matched


def _qstat_json_jobs(text: str) -> dict[str, dict]:
    """The ``Jobs`` mapping of ``qstat -f -F json`` output ({} when there are none).

    Some PBS versions print JSON that is not quite valid (unescaped backslashes in
    environment values, bare ``inf``/``nan`` for names that look like numbers); those are
    repaired before giving up.
    """
    if not text.strip():
        return {}
    try:
        data = json.loads(text, strict=False)
    except json.JSONDecodeError:
        repaired = re.sub(r'\\(?!["\\/bfnrtu])', r"\\\\", text)
        repaired = re.sub(r":\s*(-?inf|-?Infinity|nan|NaN)\s*(?=[,}\n])", r': "\1"', repaired)
        try:
            data = json.loads(repaired, strict=False)
        except json.JSONDecodeError as exc:
            raise ValueError(
                f"qstat -F json printed text that is not JSON ({exc}): {text[:200]!r}"
            ) from exc
    jobs = data.get("Jobs", {}) if isinstance(data, dict) else {}
    return {str(k): v for k, v in jobs.items() if isinstance(v, dict)}


def _seconds(hms: object) -> int | None:
    """``"H:MM:SS"`` (PBS times) -> seconds, or None if absent/unreadable."""
    if not isinstance(hms, str) or not re.fullmatch(r"\d+(:\d+){0,2}", hms.strip()):
        return None
    total = 0
    for part in hms.strip().split(":"):
        total = total * 60 + int(part)
    return total


class PBS(LegacyCommands, PBSScheduler):
    """:class:`PBSScheduler` under its expyre-wfl 0.1.6 name, with 0.1.6's ``submit``,
    ``status``, ``hold``, ``release`` and ``cancel`` (see :mod:`expyre.schedulers.legacy`)."""
