"""Why a job failed, as one category: decided from what the queue, the runner and stderr say.

Pure: no commands run here. The caller gathers the evidence -- the queue's final state
(``squeue``/``sacct``/the job completion log, ``qacct``, PBS exit status, the local queue's
record, mapped to :class:`expyre.schedulers.base.QueueState` values), the runner's result
record, whether the runner started, and the job's stderr -- and :func:`categorise` names the
category. Each category calls for a different remedy, which is what makes it worth knowing:

=================  ====================================================  ====================
category           evidence                                              the remedy that fits
=================  ====================================================  ====================
timeout            queue: time limit (Slurm TIMEOUT/DEADLINE, SGE        more time
                   ``failed 37`` with ``h_rt``, local queue timeout)
out_of_memory      queue: OUT_OF_MEMORY (Slurm), ``h_vmem`` limit (SGE);  more memory, or
                   stderr: oom-kill / "exceeded memory limit"; the       fewer items per job
                   function raised ``MemoryError`` (SGE's ``h_vmem`` is
                   an address-space limit, so Python sees MemoryError)
node_failure       queue: NODE_FAIL/BOOT_FAIL, preemption; a job that    resubmit unchanged
                   vanished (its machine or launcher died, no record
                   anywhere)
cancelled          queue: CANCELLED (``scancel``, ``qdel``, an admin)    resubmit only if
                                                                         that is wanted
exception          the function raised (record of stage ``call``) or     fix the code or the
                   returned an unpicklable value                         input
bad_environment    the runner could not load the call (``load`` stage:   fix the job's
                   an import failed), or the job's python never started  environment
                   (``No module named 'expyre'``, command not found)
unknown            none of the above (e.g. killed by a signal with no    look at the job's
                   word from the queue)                                  stderr
=================  ====================================================  ====================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "CATEGORIES",
    "Diagnosis",
    "categorise",
    "diagnosis_from_info",
    "exception_type",
    "failure_info",
]

CATEGORIES = (
    "timeout",
    "out_of_memory",
    "node_failure",
    "cancelled",
    "exception",
    "bad_environment",
    "unknown",
)

#: queue states (QueueState values) that decide the category by themselves
_QUEUE_CATEGORY = {
    "timeout": "timeout",
    "out_of_memory": "out_of_memory",
    "node_fail": "node_failure",
    "vanished": "node_failure",
    "cancelled": "cancelled",
}

# What the batch systems and the kernel write into a job's stderr when they end it. Slurm's
# slurmstepd writes the "CANCELLED AT ... DUE TO ..." lines; cgroup/jobacct memory kills
# write "oom-kill"/"Exceeded job memory limit"; SGE writes nothing useful there.
_STDERR_PATTERNS = [
    ("node_failure", re.compile(r"DUE TO (PREEMPTION|NODE FAILURE)", re.IGNORECASE)),
    ("timeout", re.compile(r"DUE TO TIME LIMIT|time limit exceeded|h_rt.*exceeded", re.I)),
    (
        "out_of_memory",
        re.compile(
            r"oom[-_ ]kill|Exceeded (job|step) memory limit|out of memory|"
            r"memory limit exceeded|Cannot allocate memory",
            re.IGNORECASE,
        ),
    ),
    ("cancelled", re.compile(r"\*\*\* (JOB|STEP) \d+\S* ON \S+ CANCELLED AT", re.IGNORECASE)),
]

# The job's python never got as far as the runner: it is missing, broken, or cannot import
# expyre / cloudpickle. These are the shells' and Python's own words for that.
_BAD_ENVIRONMENT = re.compile(
    r"No module named '?(expyre|cloudpickle|encodings)\b|"
    r"Fatal Python error|"
    r"\S+: command not found|"
    r"python[0-9.]*: No such file or directory|"
    r"error while loading shared libraries|"
    r"Could not find platform (in)?dependent libraries",
    re.IGNORECASE,
)

_EXCEPTION_TYPE = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*\(")


@dataclass(frozen=True)
class Diagnosis:
    """The category of one failed job and the evidence for it.

    Attributes
    ----------
    category : str
        One of :data:`CATEGORIES`.
    reason : str
        One sentence saying which evidence decided it (shown in reports and the history).
    exception_type : str or None
        For ``exception`` (and a ``MemoryError``): the exception's class name.
    """

    category: str
    reason: str
    exception_type: str | None = None


def exception_type(exception_repr: str | None) -> str | None:
    """Class name from an exception's ``repr`` (``"ValueError('x')"`` -> ``"ValueError"``)."""
    if not exception_repr:
        return None
    m = _EXCEPTION_TYPE.match(exception_repr)
    return m.group(1) if m else None


def categorise(
    *,
    queue_state: str | None,
    record: dict | None,
    runner_started: bool,
    stderr: str = "",
) -> Diagnosis:
    """Decide why a job failed.

    Parameters
    ----------
    queue_state : str or None
        The queue's last word on the job, a :class:`~expyre.schedulers.base.QueueState`
        value (``"timeout"``, ``"cancelled"``, ``"node_fail"``, ``"failed"``, ...), or
        ``"vanished"`` when neither the queue nor its accounting knew the job any more.
    record : dict or None
        The runner's result record (None: the job wrote none).
    runner_started : bool
        Whether the runner got as far as writing its "started" marker.
    stderr : str
        The job's stderr (the tail is enough).

    Returns
    -------
    Diagnosis
    """
    if record is not None and not record.get("ok"):
        return _from_record(record)
    by_queue = _QUEUE_CATEGORY.get(queue_state or "")
    if by_queue == "cancelled":
        # Slurm reports a preempted job as cancelled in some versions; its stderr says which
        if re.search(r"DUE TO PREEMPTION", stderr, re.IGNORECASE):
            return Diagnosis("node_failure", "the job was preempted (stderr)")
        return Diagnosis("cancelled", "the queue reports the job cancelled (by a user or admin)")
    if by_queue is not None:
        return Diagnosis(by_queue, _QUEUE_REASON[queue_state or ""])
    for category, pattern in _STDERR_PATTERNS:
        m = pattern.search(stderr)
        if m:
            return Diagnosis(category, f"the job's stderr says {m.group(0)!r}")
    m = _BAD_ENVIRONMENT.search(stderr)
    if m and not runner_started:
        return Diagnosis(
            "bad_environment",
            f"the job's python could not start the runner (stderr: {m.group(0)!r})",
        )
    if not runner_started and queue_state in ("failed", "completed"):
        return Diagnosis(
            "bad_environment",
            "the job script ended before its python started the runner (check the system's "
            "python_cmd, commands and the job's pre_cmds)",
        )
    if queue_state in ("failed", "completed"):
        return Diagnosis(
            "unknown",
            "the job ended without a result and the queue names no cause (killed by a "
            "signal outside the queue's control?)",
        )
    return Diagnosis("unknown", f"no evidence of a cause (queue state {queue_state or 'none'})")


_QUEUE_REASON = {
    "timeout": "the queue ended the job at its time limit",
    "out_of_memory": "the queue killed the job for exceeding its memory request",
    "node_fail": "the queue reports that the job's node failed",
    "vanished": "the job vanished with its machine or launcher: the queue and its accounting "
    "no longer know it and it wrote no result",
}


def _from_record(record: dict) -> Diagnosis:
    exc_type = exception_type(record.get("exception_repr"))
    stage = record.get("stage")
    if stage == "load":
        return Diagnosis(
            "bad_environment",
            f"the job's python could not load the call ({record.get('exception_repr')}); "
            "the function's modules must be importable where the job runs",
            exc_type,
        )
    if exc_type == "MemoryError":
        return Diagnosis(
            "out_of_memory", "the function raised MemoryError (memory limit reached)", exc_type
        )
    return Diagnosis(
        "exception", f"the function raised {record.get('exception_repr')}", exc_type or "?"
    )


def failure_info(diagnosis: Diagnosis) -> dict:
    """A diagnosis as stored in a job's ``info`` (JSON): category, reason, exception type."""
    return {
        "category": diagnosis.category,
        "reason": diagnosis.reason,
        "exception_type": diagnosis.exception_type,
    }


def diagnosis_from_info(info: dict) -> Diagnosis | None:
    """The diagnosis stored by :func:`failure_info` in a job's ``info``, or None."""
    stored = info.get("failure") if isinstance(info, dict) else None
    if not isinstance(stored, dict) or stored.get("category") not in CATEGORIES:
        return None
    return Diagnosis(stored["category"], stored.get("reason") or "", stored.get("exception_type"))
