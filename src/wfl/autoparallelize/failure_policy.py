"""What to do with a queued job that failed, decided by its failure category.

Every failed job has a category (:mod:`expyre.failure`: ``timeout``, ``out_of_memory``,
``node_failure``, ``cancelled``, ``exception``, ``bad_environment``, ``unknown``).
``RemoteInfo.failure_policies`` maps categories to actions:

``resubmit``
    the same request again (the work was fine; its machine was not);
``more_time``
    the time limit times :data:`TIME_FACTOR`, capped by the longest ``max_time`` of the
    system's partitions the request may use -- a partition allowing more is chosen by
    partition selection when the current one's limit is exceeded;
``more_memory``
    the memory request times :data:`MEMORY_FACTOR`, capped likewise by ``max_mem``; when it
    cannot grow, a chunk of several items is split instead;
``split``
    the chunk's items resubmitted as two jobs of half the items each;
``fail``
    report it (with the remedy that fits the category).

A job is submitted at most ``RemoteInfo.max_attempts`` times (default
:data:`MAX_SUBMISSIONS_PER_JOB`), counted in the jobs database, so a rerun of the script
never starts the count again and no failure is retried in a loop. This module is pure: it decides; :mod:`wfl.autoparallelize.queued_jobs` acts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# the categories are decided by expyre, which knows the queues; wfl only decides what to do
from expyre.failure import CATEGORIES

__all__ = [
    "ACTIONS",
    "DEFAULT_POLICIES",
    "MAX_SUBMISSIONS_PER_JOB",
    "Decision",
    "check_failure_policies",
    "check_max_attempts",
    "decide",
    "effective_policies",
    "remedy",
]

ACTIONS = ("resubmit", "more_time", "more_memory", "split", "fail")

#: what a user would expect without saying anything: a job killed through no fault of its
#: own is run again (with more of what it ran out of); a failure of the code, the input or
#: the environment, or a deliberate cancel, is reported
DEFAULT_POLICIES = {
    "timeout": "more_time",
    "out_of_memory": "more_memory",
    "node_failure": "resubmit",
    "cancelled": "fail",
    "exception": "fail",
    "bad_environment": "fail",
    "unknown": "resubmit",
}
TIME_FACTOR = 2.0
MEMORY_FACTOR = 2.0
#: default of ``RemoteInfo.max_attempts``: submissions of one job, its first included
MAX_SUBMISSIONS_PER_JOB = 3

#: the remedy that fits each category, for reports of failures that remain
_REMEDIES = {
    "timeout": "give it more time: failure_policies {'timeout': 'more_time'} and rerun (the "
    "job resumes from its raised request), or raise max_time in RemoteInfo resources and "
    "`xpr reset_status -i ID`, then rerun; or fewer items per job (num_inputs_per_queued_job)",
    "out_of_memory": "give it more memory: failure_policies {'out_of_memory': 'more_memory'} "
    "(or 'split') and rerun, or raise max_mem_tot/max_mem_per_core in RemoteInfo resources and "
    "`xpr reset_status -i ID`, then rerun; or fewer items per job (num_inputs_per_queued_job)",
    "node_failure": "it died with its machine: failure_policies {'node_failure': 'resubmit'} "
    "and rerun, or `xpr reset_status -i ID` and rerun",
    "cancelled": "it was cancelled on purpose; to run it again rerun with failure_policies "
    "{'cancelled': 'resubmit'} (or resubmit_killed_jobs=True), or `xpr reset_status -i ID` "
    "and rerun",
    "exception": "fix the code or the input item named in the traceback, then rerun: the "
    "items without a result run again (for a whole-call job, or with reuse_items=False, "
    "`xpr reset_status -i ID` (or `xpr rm -i ID`) first)",
    "bad_environment": "fix the job's environment (the system's python_cmd and commands in "
    "config.json, the job's pre_cmds) so that its python imports expyre and your modules, "
    "then `xpr reset_status -i ID` and rerun",
    "unknown": "read the job's stderr (`xpr logs ID --stderr`); if it was killed from "
    "outside, failure_policies {'unknown': 'resubmit'} and rerun, or `xpr reset_status -i ID` "
    "and rerun",
}

#: when one item alone is too much, the remedy is its request, not another split
_ONE_ITEM_REMEDIES = {
    "timeout": "one item alone needs more time: failure_policies {'timeout': 'more_time'}, or "
    "raise max_time in RemoteInfo resources and `xpr reset_status -i ID`, then rerun",
    "out_of_memory": "one item alone needs more memory: failure_policies {'out_of_memory': "
    "'more_memory'}, or raise max_mem_tot in RemoteInfo resources and `xpr reset_status -i "
    "ID`, then rerun",
}


def remedy(category: str | None, job_id: str = "ID") -> str:
    """The remedy that fits a failure category, one sentence for the failure report.

    Each remedy works on a rerun of the script: a job that failed stays failed (a rerun
    reports it again, never resubmits it by surprise) until a policy that covers its category
    is set, or it is reset with ``xpr reset_status``. ``job_id`` fills in the commands.
    """
    text = _REMEDIES.get(category or "unknown", _REMEDIES["unknown"])
    return text.replace(" ID", f" {job_id}")


def check_failure_policies(value: Any) -> dict[str, str]:
    """Validate ``RemoteInfo.failure_policies``: a dict category -> action (may be partial).

    Raises
    ------
    ValueError
        Naming the bad key or value and the allowed ones.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(
            "RemoteInfo failure_policies must be a dict from failure category to action, e.g. "
            f"{{'timeout': 'more_time'}}, got {value!r}"
        )
    for category, action in value.items():
        if category not in CATEGORIES:
            raise ValueError(
                f"RemoteInfo failure_policies key {category!r} is not a failure category; "
                f"use one of {', '.join(CATEGORIES)}"
            )
        if action not in ACTIONS:
            raise ValueError(
                f"RemoteInfo failure_policies[{category!r}] = {action!r} is not an action; "
                f"use one of {', '.join(ACTIONS)}"
            )
    return dict(value)


def effective_policies(
    failure_policies: Mapping[str, str] | None, resubmit_killed_jobs: bool
) -> dict[str, str]:
    """The action for every category: defaults, then ``resubmit_killed_jobs``, then the user's.

    ``resubmit_killed_jobs=True`` keeps its old meaning -- every job the queue ended without a
    Python exception runs again -- so it turns ``cancelled`` into ``resubmit`` (the other
    killed categories are resubmitted by default already, with more time or memory where
    that is what ran out).
    """
    policies = dict(DEFAULT_POLICIES)
    if resubmit_killed_jobs:
        policies["cancelled"] = "resubmit"
    policies.update(failure_policies or {})
    return policies


@dataclass(frozen=True)
class Decision:
    """What to do with one failed job.

    Attributes
    ----------
    action : str
        ``resubmit``, ``more_time``, ``more_memory``, ``split`` or ``fail``.
    resources : dict or None
        The request for the resubmission (``Resources`` keyword arguments).
    message : str
        For a resubmission: the line printed on stderr; for ``fail``: why no policy applies.
    remedy : str
        For ``fail``: what the user can do, when the category's own remedy
        (:func:`remedy`) does not fit why the policy stopped ("" otherwise).
    """

    action: str
    resources: dict | None
    message: str
    remedy: str = ""


def check_max_attempts(value: Any) -> int:
    """Validate ``RemoteInfo.max_attempts``: a whole number >= 1.

    Raises
    ------
    ValueError
        Naming the value and what is allowed.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            "RemoteInfo max_attempts must be a whole number >= 1 (submissions of one job, "
            f"its first included; 1 never resubmits), got {value!r}; the default is "
            f"{MAX_SUBMISSIONS_PER_JOB}"
        )
    return value


def decide(
    *,
    category: str,
    policies: Mapping[str, str],
    resources: Mapping[str, Any],
    partitions: Mapping[str, Any],
    submissions: int,
    num_items: int,
    job_label: str,
    exact_fit: bool = True,
    partial_node: bool = False,
    max_attempts: int = MAX_SUBMISSIONS_PER_JOB,
) -> Decision:
    """Decide what to do with a failed job.

    Parameters
    ----------
    category : str
        The job's failure category.
    policies : dict
        Category -> action, complete (see :func:`effective_policies`).
    resources : dict
        The request the job last ran with (``Resources`` keyword arguments).
    partitions : dict of str to expyre.config.PartitionConfig
        The system's partitions (caps for more time and memory).
    submissions : int
        How many times the job was submitted so far.
    num_items : int
        Items in the job's chunk (a single item cannot be split).
    job_label : str
        How messages name the job.
    exact_fit, partial_node : bool
        Partition selection rules the job is submitted with.
    max_attempts : int
        Most submissions of one job, its first included (a split makes new jobs, each
        with its own count, and is bounded by the items instead).
    """
    action = policies.get(category, "fail")
    if action == "fail":
        return Decision("fail", None, f"failure policy for {category} is 'fail'")
    if action != "split" and submissions >= max_attempts:
        return Decision(
            "fail",
            None,
            f"submitted {submissions} time(s) already (max_attempts={max_attempts}), "
            f"so failure policy {action!r} is not applied again",
            f"it failed every time: read its stderr (`xpr logs ID --stderr`) and the "
            f"earlier attempts (`xpr show ID`); to try more, raise RemoteInfo max_attempts "
            f"(now {max_attempts}) and rerun, or `xpr reset_status -i ID` and rerun to run "
            "it once more",
        )
    submission = f"(submission {submissions + 1} of at most {max_attempts})"
    if action == "resubmit":
        return Decision(
            "resubmit",
            dict(resources),
            f"{job_label}: {category}; resubmitting unchanged {submission}",
        )
    if action == "split":
        if num_items < 2:
            return Decision(
                "fail",
                None,
                f"{category}: one item cannot be split further",
                _ONE_ITEM_REMEDIES.get(category, ""),
            )
        return Decision(
            "split",
            dict(resources),
            f"{job_label}: {category}; splitting its {num_items} items into two jobs of "
            f"{(num_items + 1) // 2} and {num_items // 2}",
        )
    limit = _TIME if action == "more_time" else _MEMORY
    decision = _grow(
        limit,
        resources,
        partitions,
        exact_fit,
        partial_node,
        f"{job_label}: {category}",
        submission,
    )
    if decision.action == "fail" and action == "more_memory" and num_items > 1:
        # memory cannot grow: fewer items per job need less of it
        return Decision(
            "split",
            dict(resources),
            f"{job_label}: {category}; {decision.message}, so splitting its {num_items} "
            "items into two jobs instead",
        )
    return decision


def _select(resources: Mapping[str, Any], partitions, exact_fit, partial_node):
    from expyre.resources import NoPartitionFits, Resources, select_partition

    try:
        return select_partition(Resources(**resources), partitions, exact_fit, partial_node)
    except NoPartitionFits:
        return None


@dataclass(frozen=True)
class _Limit:
    """A request a policy raises (time or memory): how to read, cap, write and show it."""

    action: str
    #: how messages name the request, and the partition field that caps it
    name: str
    cap_field: str
    #: "the longest"/"the most" any partition allows
    superlative: str
    factor: float
    #: (resources, partitions, selection or None) -> current value (None: nothing to raise)
    current: Callable[[Mapping[str, Any], Mapping[str, Any], Any], int | None]
    #: (partition, nodes of the request) -> the partition's cap (None: no cap)
    cap: Callable[[Any, int], int | None]
    #: (resources, new value) -> the new request
    written: Callable[[Mapping[str, Any], int], dict]
    show: Callable[[int], str]
    #: why there is nothing to raise
    nothing: str
    #: what the user can do when it cannot be raised
    remedy: str


def _grow(
    limit: _Limit, resources, partitions, exact_fit, partial_node, headline: str, submission: str
) -> Decision:
    """Raise ``limit`` by its factor, else to the largest partition cap between, or fail."""
    before = _select(resources, partitions, exact_fit, partial_node)
    old = limit.current(resources, partitions, before)
    if old is None:
        return Decision("fail", None, limit.nothing, limit.remedy)
    wanted = int(old * limit.factor)
    nodes = before.num_nodes if before is not None else 1
    # the request itself, else the largest partition cap that still raises it
    caps = {limit.cap(p, nodes) for p in partitions.values()}
    candidates = [wanted] + sorted({c for c in caps if c and old < c < wanted}, reverse=True)
    for new in candidates:
        request = limit.written(resources, int(new))
        after = _select(request, partitions, exact_fit, partial_node)
        if after is None:
            continue
        moved = ""
        if before is not None and after.partition != before.partition:
            moved = f", partition {before.partition} -> {after.partition}"
        capped = "" if new == wanted else f" (capped by the partition's {limit.cap_field})"
        return Decision(
            limit.action,
            request,
            f"{headline}; resubmitting with {limit.name} {limit.show(old)} -> "
            f"{limit.show(int(new))}{capped}{moved} {submission}",
        )
    return Decision(
        "fail",
        None,
        f"{limit.name} {limit.show(old)} is already {limit.superlative} any partition allowed "
        "for this request has",
        limit.remedy,
    )


def _time_s(resources: Mapping[str, Any], partitions, selection) -> int | None:
    from expyre.resources import Resources

    return Resources(**resources).max_time_s


def _memory_kB(resources: Mapping[str, Any], partitions, selection) -> int | None:
    """Total memory the job had, kB: its request, else its partition's whole nodes."""
    from expyre.resources import Resources

    res = Resources(**resources)
    if res.max_mem_tot_kB is not None:
        return res.max_mem_tot_kB
    if res.max_mem_per_core_kB is not None and selection is not None:
        return res.max_mem_per_core_kB * selection.num_cores
    if selection is not None:
        part = partitions[selection.partition]
        if part.max_mem_kB is not None:
            return part.max_mem_kB * selection.num_nodes
    return None


def _with_time(resources: Mapping[str, Any], seconds: int) -> dict:
    return {**copy.deepcopy(dict(resources)), "max_time": seconds}


def _with_memory(resources: Mapping[str, Any], kB: int) -> dict:
    # a total replaces a per-core request: the raise is of what the job had in all
    new = {k: v for k, v in copy.deepcopy(dict(resources)).items() if k != "max_mem_per_core"}
    return {**new, "max_mem_tot": kB}


def _format_time(seconds: int) -> str:
    from expyre.units import format_time

    return format_time(seconds)


def _mb(kB: int) -> str:
    return f"{kB / 1024:.0f} MB"


_TIME = _Limit(
    action="more_time",
    name="max_time",
    cap_field="max_time",
    superlative="the longest",
    factor=TIME_FACTOR,
    current=_time_s,
    cap=lambda partition, nodes: partition.max_time_s,
    written=_with_time,
    show=_format_time,
    nothing="the job has no max_time, so there is no time limit to raise",
    remedy="no partition allows more time: fewer items per job (num_inputs_per_queued_job, or "
    "failure_policies {'timeout': 'split'}), or declare a partition with a longer max_time "
    "in config.json; then `xpr reset_status -i ID` and rerun",
)
_MEMORY = _Limit(
    action="more_memory",
    name="memory",
    cap_field="max_mem",
    superlative="the most",
    factor=MEMORY_FACTOR,
    current=_memory_kB,
    cap=lambda partition, nodes: partition.max_mem_kB * nodes if partition.max_mem_kB else None,
    written=_with_memory,
    show=_mb,
    nothing="the job asked for no memory and its partitions declare no max_mem, so there is "
    "no request to raise",
    remedy="no partition allows more memory: fewer items per job (num_inputs_per_queued_job, "
    "or failure_policies {'out_of_memory': 'split'}), or declare max_mem for the system's "
    "partitions in config.json and ask for memory (resources max_mem_tot); then `xpr "
    "reset_status -i ID` and rerun",
)
