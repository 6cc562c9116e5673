"""Plan mode of autoparallelize: ``$WFL_PLAN`` set means "say what would run, run nothing".

Every autoparallelized call the script reaches appends one record to the plan file (see
:mod:`expyre.plan`; ``xpr plan -- python script.py`` sets the variable and prints the plan):

* outputs already complete: the call is skipped as in a real run and returns the stored
  outputs, so later calls see real inputs;
* otherwise nothing runs -- no queued job is created or submitted, and calls that would run
  in the local pool do not run either (a plan spends nothing). The call returns an *empty*
  ConfigSet, remembered as pending: a later call whose inputs are such a ConfigSet is marked
  "inputs computed by an earlier step: counts unknown" and lists no jobs, because neither
  the number of its items nor their job keys can be known before the earlier step runs.
  Outputs are not written, so a later real run does all the work.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from wfl.configset import ConfigSet

if TYPE_CHECKING:
    from wfl.autoparallelize.autoparainfo import AutoparaInfo
    from wfl.autoparallelize.remoteinfo import RemoteInfo
    from wfl.configset import OutputSpec

# ConfigSets returned by planned (not run) calls: their contents are not known yet
_pending: weakref.WeakSet = weakref.WeakSet()


def active() -> bool:
    """True when ``$WFL_PLAN`` names a plan file (plan mode)."""
    from expyre.plan import plan_file

    return plan_file() is not None


def _call_name(op: Callable) -> str:
    """``end/of/path.py::function`` of the function that called autoparallelize."""
    from wfl.autoparallelize.select import user_frames

    frames = user_frames()
    if not frames:
        return getattr(op, "__qualname__", repr(op))
    filename, _, qualname = frames[-1]
    parts = filename.replace("\\", "/").split("/")
    return f"{'/'.join(parts[-2:])}::{qualname}"


def _matched_key(autopara_info: AutoparaInfo) -> str | None:
    """The WFL_EXPYRE_INFO key this call matched (None: remote_info given in code)."""
    if getattr(autopara_info, "remote_info", None) is not None:
        return None
    from wfl.autoparallelize.select import selection_from_env, user_frames

    selection = selection_from_env()
    if selection is None:
        return None
    if selection.applies_to_all is not None:
        return "(every call: the value has no selector keys)"
    label = getattr(autopara_info, "remote_label", None)
    frames = user_frames()
    for selector in selection.selectors:
        if selector.matches(frames, label):
            return selector.key
    return None


def _labels(autopara_info: AutoparaInfo) -> list[str]:
    label = getattr(autopara_info, "remote_label", None)
    return [label] if label else []


def plan_call(
    op: Callable,
    inputs: ConfigSet,
    outputs: OutputSpec,
    key: dict,
    items: list,
    rng: Any,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    autopara_info: AutoparaInfo,
    remote_info: RemoteInfo,
    input_digests: Sequence[bytes] | None = None,
) -> ConfigSet:
    """Record what this call would do and return; runs nothing, writes no output.

    Parameters
    ----------
    op, items, args, kwargs, autopara_info
        As in a real call (see :func:`wfl.autoparallelize.remote.run_queued`).
    inputs : ConfigSet
        The call's inputs, to tell whether an earlier planned call would compute them.
    outputs, key
        The OutputSpec and the call's completion key: complete outputs are skipped (and
        returned) as in a real run.
    rng : numpy.random.Generator or None
        The caller's generator (children are spawned as in a real call: job keys depend on them).
    remote_info : RemoteInfo or None
        None: the call would run in the local pool.
    input_digests : sequence of bytes, optional
        The inputs' value digests, if computed already (item store keys).

    Returns
    -------
    ConfigSet
        The stored outputs when complete, else an empty ConfigSet remembered as pending.
    """
    from expyre.plan import append_record, preview_submission
    from wfl.autoparallelize.completion import outputs_done

    pending = inputs in _pending
    record: dict[str, Any] = {
        "call": _call_name(op),
        "labels": _labels(autopara_info),
        "num_items": None if pending else len(items),
        "inputs_pending": pending,
    }
    if not pending:
        try:
            done = outputs_done(outputs, key)
        except ValueError as exc:  # e.g. outputs made by other inputs: a real run stops here
            record["error"] = str(exc)
            done = False
        if done:
            append_record({**record, "where": "done"})
            return outputs.to_ConfigSet()
    item_rngs = list(rng.spawn(len(items))) if rng is not None else None
    if remote_info is None:
        record["where"] = "here"
    else:
        from wfl.autoparallelize.remote import job_env_vars, plan_queued

        record.update(
            where="queue",
            matched=_matched_key(autopara_info),
            resources=dict(remote_info.resources)
            if hasattr(remote_info.resources, "keys")
            else str(remote_info.resources),
            submission=preview_submission(
                remote_info.resources,
                job_name=remote_info.job_name,
                system_name=remote_info.sys_name,
                header_extra=remote_info.header_extra,
                exact_fit=remote_info.exact_fit,
                partial_node=remote_info.partial_node,
                env_vars=job_env_vars(remote_info),
            ),
        )
        if pending:
            record["jobs"] = []
        else:
            record.update(
                plan_queued(
                    op, items, item_rngs, args, kwargs, autopara_info, remote_info, input_digests
                )
            )
        if remote_info.max_allocations is not None or remote_info.job_array:
            record["packing"] = (
                f"max_allocations={remote_info.max_allocations}, job_array={remote_info.job_array}"
                " (the header shown is that of one job of its own)"
            )
    append_record(record)
    result = ConfigSet([])
    _pending.add(result)
    return result


class PlanStopped(RuntimeError):
    """Plan mode reached a call whose results it cannot stand in for (a fit as queued jobs)."""


def stop_at_single_jobs(
    calls: Sequence[tuple], remote_info: RemoteInfo, job_names: Sequence[str]
) -> None:
    """Record whole calls sent as queued jobs (fits), then stop the script.

    A fit's result (a potential file, a model) cannot be replaced by an empty stand-in the
    way a ConfigSet can, so the plan ends here: the record says what would be submitted.

    Raises
    ------
    PlanStopped
        Always, naming the jobs.
    """
    from expyre.plan import append_record, preview_submission
    from wfl.autoparallelize.in_job import call_in_job

    append_record(
        {
            "call": _call_name(calls[0][0]) if calls else "(no calls)",
            "labels": [],
            "num_items": len(calls),
            "inputs_pending": False,
            "where": "queue",
            "matched": "(a fit's *_REMOTEINFO variable or remote_info)",
            "resources": dict(remote_info.resources)
            if hasattr(remote_info.resources, "keys")
            else str(remote_info.resources),
            "submission": preview_submission(
                remote_info.resources,
                job_name=remote_info.job_name,
                system_name=remote_info.sys_name,
                header_extra=remote_info.header_extra,
                exact_fit=remote_info.exact_fit,
                partial_node=remote_info.partial_node,
            ),
            "jobs": [
                planned_job(remote_info, name, call_in_job, [function, list(args), dict(kwargs)])
                for (function, args, kwargs), name in zip(calls, job_names, strict=True)
            ],
            "error": "the plan stops here: a fit's result cannot be stood in for",
        }
    )
    raise PlanStopped(
        f"plan mode stops at {len(calls)} whole call(s) sent as queued jobs "
        f"({', '.join(job_names)}): their results (fitted models) cannot be stood in for; "
        "the plan above lists them, nothing was submitted"
    )


def planned_job(
    remote_info: RemoteInfo,
    name: str,
    function: Callable,
    args: Sequence[Any],
    kwargs: dict[str, Any] | None = None,
    unkeyed: dict[str, Any] | None = None,
) -> dict:
    """Plan-mode stand-in for :func:`wfl.autoparallelize.remote.make_job`: the job's fate
    (reuse / new / replaces stale) from its key, with no row, directory or submission."""
    from expyre.plan import preview_job
    from wfl.autoparallelize.remote import job_arguments

    return preview_job(name, **job_arguments(remote_info, function, args, kwargs or {}, unkeyed))
