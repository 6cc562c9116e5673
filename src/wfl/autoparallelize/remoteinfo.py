"""RemoteInfo: how one autoparallelized call is split into queued jobs and what each job asks for."""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from expyre.resources import Resources
from expyre.units import parse_time
from wfl.autoparallelize.failure_policy import (
    MAX_SUBMISSIONS_PER_JOB,
    check_failure_policies,
    check_max_attempts,
)

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Fields that are lists of strings, with what each item is, for error messages.
_STRING_LIST_FIELDS = {
    "pre_cmds": "a shell command",
    "post_cmds": "a shell command",
    "env_vars": '"NAME=value" or "NAME"',
    "input_files": "a file or directory path",
    "output_files": "a file or directory path",
    "header_extra": "a scheduler header line",
    "hash_ignore": "an argument name",
}


@dataclasses.dataclass(eq=True, repr=True)
class RemoteInfo:
    """Resources and job settings for running an autoparallelized operation as queued jobs.

    Parameters
    ----------
    sys_name : str or None
        Name of a system in expyre's ``config.json`` (None: env ``EXPYRE_SYS``, else the
        embedded ``local`` system).
    job_name : str
        Base name of the jobs; each job adds its chunk number.
    resources : dict or expyre.resources.Resources
        Per-job resources, e.g. ``{"num_nodes": 1, "max_time": "24h"}`` (times accept
        seconds, ``"30m"``, ``"24h"``, ``"2d"``, ``"1-00:00:00"``).
    num_inputs_per_queued_job : int
        Items per job if positive; if negative, ``-n * num_inputs_per_python_subprocess``.
    pre_cmds, post_cmds : list of str
        Shell commands run in the job before / after the Python call.
    env_vars : list of str
        ``"NAME=value"`` exported in the job (shell-expanded at run time, so
        ``${EXPYRE_NUM_CORES_PER_NODE}`` works) or bare ``"NAME"`` to copy the submitting
        process's value.
    input_files, output_files : list of str
        Staged into the job directory / copied back from it.
    header_extra : list of str
        Extra scheduler header lines for these jobs.
    exact_fit, partial_node : bool
        Partition selection rules (see ``expyre.resources``).
    timeout : float or None
        Longest wait for all results, seconds. None (default): wait as long as the jobs are
        alive in their queue -- the queue's own time limit (``resources["max_time"]``)
        already bounds a job, and a driver that gave up earlier would abandon a 24 h job
        after a fraction of it. Jobs that leave the queue without a result still end the
        wait (they are reported as died).
    check_interval : float or None
        Seconds between status polls; None (default) adapts: about 1 s while jobs are young,
        backing off towards 30 s.
    ignore_failed_jobs : bool
        Return a failed job's inputs tagged ``info["EXPYRE_REMOTE_JOB_FAILED"] = True``
        instead of raising.
    resubmit_killed_jobs : bool
        Resubmit every job the queue killed, including cancelled ones (jobs that hit their
        time or memory limit, lost their node, or vanished are resubmitted by default).
    hash_ignore : list of str
        Names of the operation's keyword arguments left out of the job key.
    max_allocations : int or None
        None (default): each chunk is a queue job of its own. K: the chunks are *packed* into
        at most K queue jobs ("allocations", each requesting ``resources``), each running
        chunks one after the other until none is left; a chunk keeps its own key, result and
        restart guarantees. Use it when chunks are short next to the queue's wait and
        start-up (see the README's section on throughput).
    job_array : bool
        Submit the queue jobs as ONE job array (Slurm, SGE, PBS): one submit command, at
        most ``max_allocations`` tasks (default: one per chunk), fewer if the site's largest
        array is smaller -- each task then runs chunks until none is left.
    failure_policies : dict, optional
        What to do with a failed job, by failure category: ``{"timeout": "more_time",
        "out_of_memory": "split", "cancelled": "resubmit", ...}``. Categories: timeout,
        out_of_memory, node_failure, cancelled, exception, bad_environment, unknown; actions:
        resubmit, more_time, more_memory, split, fail. Categories not given keep their
        defaults (:data:`wfl.autoparallelize.failure_policy.DEFAULT_POLICIES`).
    max_attempts : int
        Most submissions of one job, its first included (default 3; 1 never resubmits), for
        every policy that resubmits it. Counted in the jobs database, so a rerun of the
        script does not start the count again. ``split`` is bounded by the items instead: a
        chunk is halved until one item is left.
    reuse_items : bool
        True (default): each item's result is kept in the project's item store
        (``_expyre/items.db``) when its job's results are gathered, and a rerun takes every
        item computed already -- whatever the chunking -- and queues only the others. False:
        items are neither looked up nor stored (only whole jobs are reused, by their key).
    """

    sys_name: str | None
    job_name: str
    resources: Resources | Mapping[str, Any]
    num_inputs_per_queued_job: int = -100
    pre_cmds: list[str] = dataclasses.field(default_factory=list)
    post_cmds: list[str] = dataclasses.field(default_factory=list)
    env_vars: list[str] = dataclasses.field(default_factory=list)
    input_files: list[str] = dataclasses.field(default_factory=list)
    output_files: list[str] = dataclasses.field(default_factory=list)
    header_extra: list[str] = dataclasses.field(default_factory=list)
    exact_fit: bool = True
    partial_node: bool = False
    timeout: float | None = None
    check_interval: float | None = None
    ignore_failed_jobs: bool = False
    resubmit_killed_jobs: bool = False
    hash_ignore: list[str] = dataclasses.field(default_factory=list)
    max_allocations: int | None = None
    job_array: bool = False
    failure_policies: dict[str, str] | None = None
    max_attempts: int = MAX_SUBMISSIONS_PER_JOB
    reuse_items: bool = True

    #: the field names, in order (the keys ``from_value`` accepts)
    FIELDS: ClassVar[list[str]]

    def __post_init__(self) -> None:
        # every field is checked and normalised (private copies, times in seconds) here
        for name, check in _CHECKS.items():
            setattr(self, name, check(name, getattr(self, name)))

    @classmethod
    def from_value(
        cls, value: RemoteInfo | Mapping[str, Any], source: str = "remote_info"
    ) -> RemoteInfo:
        """A RemoteInfo from a RemoteInfo (copied) or a dict of its keyword arguments.

        Parameters
        ----------
        value : RemoteInfo or dict
            What the user gave.
        source : str
            Where it came from, named in error messages (e.g. an env var and key).
        """
        if isinstance(value, RemoteInfo):
            return copy.deepcopy(value)
        if not isinstance(value, Mapping):
            raise TypeError(
                f"{source} must be a RemoteInfo or a dict of RemoteInfo arguments, "
                f"got {type(value).__name__}: {value!r}"
            )
        unknown = sorted(set(value) - set(cls.FIELDS))
        if unknown:
            raise ValueError(
                f"{source} has unknown RemoteInfo key(s) {unknown}; allowed keys: {', '.join(cls.FIELDS)}"
            )
        missing = [k for k in ("job_name", "resources") if k not in value]
        if missing:
            raise ValueError(f"{source} is missing required RemoteInfo key(s) {missing}")
        kwargs = copy.deepcopy(dict(value))
        kwargs.setdefault("sys_name", None)
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"{source}: {exc}") from None

    def as_dict(self) -> dict[str, Any]:
        """Keyword arguments that rebuild this RemoteInfo (deep copies)."""
        return {f: copy.deepcopy(getattr(self, f)) for f in self.FIELDS}

    def updated(self, extra: Mapping[str, Any], source: str = "update") -> RemoteInfo:
        """A new RemoteInfo with some fields replaced (this one is not modified)."""
        merged = self.as_dict()
        merged.update(copy.deepcopy(dict(extra)))
        return RemoteInfo.from_value(merged, source)

    def chunk_size(self, num_inputs_per_python_subprocess: int) -> int:
        """Number of items per job, resolving negative ``num_inputs_per_queued_job``."""
        n = self.num_inputs_per_queued_job
        return n if n > 0 else -n * max(1, int(num_inputs_per_python_subprocess))


# ----------------------------------------------------------------------------- validation


def _check_optional_str(name: str, value: Any) -> str | None:
    if value is not None and not (isinstance(value, str) and value):
        raise ValueError(f"RemoteInfo {name} must be a non-empty string or None, got {value!r}")
    return value


def _check_job_name(name: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"RemoteInfo job_name must be a non-empty string, got {value!r}")
    return value


def _check_resources(name: str, value: Any) -> Any:
    if isinstance(value, Resources):
        return copy.deepcopy(value)
    if not isinstance(value, Mapping):
        raise ValueError(
            f"RemoteInfo resources must be a dict such as "
            f'{{"num_nodes": 1, "max_time": "1h"}}, got {value!r}'
        )
    # a clear error for unknown keys (e.g. "ncores"), bad times, memory or node/core counts
    Resources.coerce(dict(value))
    return copy.deepcopy(dict(value))


def _check_max_allocations(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"RemoteInfo max_allocations must be None (one queue job per chunk) or a whole "
            f"number >= 1 of queue jobs to pack the chunks into, got {value!r}"
        )
    return value


def _check_chunk(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value == 0:
        raise ValueError(
            "RemoteInfo num_inputs_per_queued_job must be a non-zero integer "
            f"(>0: items per job, <0: multiples of num_inputs_per_python_subprocess), got {value!r}"
        )
    return value


def _check_string_list(name: str, value: Any) -> list[str]:
    if isinstance(value, str):
        raise ValueError(
            f"RemoteInfo {name} must be a list of strings, got the single string {value!r}; "
            f"write [{value!r}]"
        )
    items = list(value)
    for item in items:
        if not isinstance(item, str):
            raise ValueError(
                f"RemoteInfo {name} items must be strings ({_STRING_LIST_FIELDS[name]}), got {item!r}"
            )
    return items


def _check_env_vars(name: str, value: Any) -> list[str]:
    items = _check_string_list(name, value)
    for item in items:
        name = item.split("=", 1)[0]
        if not _ENV_NAME.match(name):
            raise ValueError(
                f'RemoteInfo env_vars item {item!r} must look like "NAME=value" or "NAME" '
                f"with NAME a valid shell variable name"
            )
    return items


def _check_bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"RemoteInfo {name} must be true or false, got {value!r}")
    return value


def _check_seconds(name: str, value: Any) -> float | None:
    if value is None:  # no limit / adaptive
        return None
    if isinstance(value, str):
        value = parse_time(value)
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ValueError(f"RemoteInfo {name} must be a positive number of seconds, got {value!r}")
    return float(value)


def _check_policies(name: str, value: Any) -> dict[str, str]:
    return check_failure_policies(value)


_CHECKS = {
    "sys_name": _check_optional_str,
    "job_name": _check_job_name,
    "resources": _check_resources,
    "num_inputs_per_queued_job": _check_chunk,
    **{name: _check_string_list for name in _STRING_LIST_FIELDS},
    "env_vars": _check_env_vars,
    "exact_fit": _check_bool,
    "partial_node": _check_bool,
    "ignore_failed_jobs": _check_bool,
    "resubmit_killed_jobs": _check_bool,
    "job_array": _check_bool,
    "failure_policies": _check_policies,
    "max_attempts": lambda name, value: check_max_attempts(value),
    "reuse_items": _check_bool,
    "timeout": _check_seconds,
    "check_interval": _check_seconds,
    "max_allocations": _check_max_allocations,
}
RemoteInfo.FIELDS = [field.name for field in dataclasses.fields(RemoteInfo)]
