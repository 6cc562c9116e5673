"""Every submission of a job, with what it asked for, how it ended and what was decided.

A job may run more than once: a failure policy resubmits it (unchanged, with more time or
memory), a user resets it. Each submission records its *request* (the partition, nodes,
cores, time and memory the scheduler was asked for) in the job's ``info["request"]``; when
the job is sent back for another run, :func:`attempt_record` keeps that submission -- its
request, system, queue id, times, outcome and the decision taken -- in ``info["attempts"]``.
:func:`submissions` puts the recorded ones and the current one together, oldest first, for
``xpr show`` and ``xpr report``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from expyre.resources import Selection

__all__ = ["attempt_record", "describe_request", "request_summary", "submissions"]


def request_summary(selection: Selection) -> dict[str, Any]:
    """What one submission asked the scheduler for (JSON-able; stored in ``info["request"]``).

    Parameters
    ----------
    selection : expyre.resources.Selection
        The partition selection the job script was written from.

    Returns
    -------
    dict
        ``partition``, ``num_nodes``, ``num_cores``, ``max_time_s`` (s) and
        ``max_mem_per_node_kB`` (kB, None when no memory was asked for).
    """
    return {
        "partition": selection.partition,
        "num_nodes": selection.num_nodes,
        "num_cores": selection.num_cores,
        "max_time_s": selection.max_time_s,
        "max_mem_per_node_kB": selection.max_mem_kB,
    }


def describe_request(request: dict | None) -> str:
    """``"debug: 1 node, 1 core, 00:01:00, 600 MB/node"``, or ``"-"`` when not recorded."""
    from expyre.units import format_time

    if not request:
        return "-"
    nodes, cores = request.get("num_nodes"), request.get("num_cores")
    parts = [
        f"{nodes} node{'s' if nodes != 1 else ''}",
        f"{cores} core{'s' if cores != 1 else ''}",
    ]
    if request.get("max_time_s"):
        parts.append(format_time(int(request["max_time_s"])))
    if request.get("max_mem_per_node_kB"):
        parts.append(f"{request['max_mem_per_node_kB'] / 1024:.0f} MB/node")
    return f"{request.get('partition', '?')}: {', '.join(parts)}"


def attempt_record(row: dict, reason: str) -> dict[str, Any]:
    """The record of the submission that just ended, and what was decided about it.

    Parameters
    ----------
    row : dict
        The job's jobs-database row (``info`` decoded), before it is sent back for a new run.
    reason : str
        The decision (e.g. which policy raised which limit).
    """
    info = row.get("info") or {}
    return {
        "at": time.time(),
        "after_submission": row["n_submissions"],
        "status": row["status"],
        "failure_category": row.get("failure_category"),
        "reason": reason,
        "system": row.get("system"),
        "remote_id": row.get("remote_id"),
        "queue_state": row.get("queue_state"),
        "submitted_at": row.get("submitted_at"),
        "started_at": row.get("started_at"),
        "ended_at": row.get("ended_at"),
        "request": info.get("request"),
    }


def submissions(row: dict) -> list[dict[str, Any]]:
    """Every submission of a job, oldest first, the current one last.

    Each is a dict with ``number`` (1, 2, ...), ``system``, ``remote_id``, ``request``,
    ``submitted_at``/``started_at``/``ended_at`` (unix s or None), ``outcome`` (the state it
    ended in, with its failure category), ``decision`` (what was done next; "" for the
    current one) and ``current``. Records written before a field was kept have it None.
    A decision that started no new submission of this job (a split into new jobs) is
    kept with the submission it was about.
    """
    info = row.get("info") or {}
    out: list[dict[str, Any]] = []
    for attempt in info.get("attempts", []):
        number = attempt.get("after_submission") or 0
        if out and out[-1]["number"] == number:
            out[-1]["decision"] += f"; {attempt.get('reason') or ''}"
            continue
        out.append(
            {
                "number": number,
                "system": attempt.get("system"),
                "remote_id": attempt.get("remote_id"),
                "request": attempt.get("request"),
                "submitted_at": attempt.get("submitted_at"),
                "started_at": attempt.get("started_at"),
                "ended_at": attempt.get("ended_at"),
                "outcome": _outcome(attempt.get("status"), attempt.get("failure_category")),
                "decision": attempt.get("reason") or "",
                "current": False,
            }
        )
    if row["n_submissions"] and (not out or out[-1]["number"] < row["n_submissions"]):
        out.append(
            {
                "number": row["n_submissions"],
                "system": row.get("system"),
                "remote_id": row.get("remote_id"),
                "request": info.get("request"),
                "submitted_at": row.get("submitted_at"),
                "started_at": row.get("started_at"),
                "ended_at": row.get("ended_at"),
                "outcome": _outcome(row["status"], row.get("failure_category")),
                "decision": "",
                "current": True,
            }
        )
    return out


def _outcome(status: str | None, category: str | None) -> str:
    return f"{status or '?'} ({category})" if category else (status or "?")
