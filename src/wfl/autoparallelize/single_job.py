"""Whole function calls (potential fits) as single queued jobs, and several of them in parallel.

Each GAP/ACE fit runs "as a single job" (a fit does not split into items), selected by ``WFL_GAP_SIMPLE_FIT_REMOTEINFO``,
``WFL_GAP_MULTISTAGE_FIT_REMOTEINFO``, ``WFL_ACE_FIT_REMOTEINFO`` or a key of
``WFL_EXPYRE_INFO``. Several independent calls (a committee of fits) are
submitted together and gathered together, so they run in parallel.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from wfl.autoparallelize.preflight import check_single_jobs
from wfl.autoparallelize.queued_jobs import FAILED, gather, start_new_and_failed_jobs
from wfl.autoparallelize.remote import whole_call_job
from wfl.autoparallelize.remoteinfo import RemoteInfo
from wfl.autoparallelize.select import choose_remote_info


def select_single_job_remote_info(
    env_var: str, remote_info: RemoteInfo | dict | None = None, remote_label: str | None = None
) -> RemoteInfo | None:
    """Decide whether a fit runs as a queued job, and with what.

    Parameters
    ----------
    env_var : str
        The fit's own variable, e.g. ``"WFL_GAP_SIMPLE_FIT_REMOTEINFO"``: JSON/YAML text or
        a file path holding one RemoteInfo dict.
    remote_info : RemoteInfo or dict, optional
        Given in code; wins over every variable.
    remote_label : str, optional
        Label matched against ``WFL_EXPYRE_INFO`` keys.

    Returns
    -------
    RemoteInfo or None
        None means "run here, in this process".
    """
    return choose_remote_info(remote_info, remote_label, env_var=env_var)


def run_as_single_jobs(
    calls: Sequence[tuple[Callable, Sequence[Any], dict[str, Any]]],
    remote_info: RemoteInfo,
    job_names: Sequence[str],
    input_files: Sequence[str] = (),
    output_files: Sequence[str] = (),
) -> list[Any]:
    """Run each ``function(*args, **kwargs)`` of ``calls`` as its own queued job.

    All jobs are submitted before any is waited for, so independent calls run in parallel
    as far as the queue allows. A rerun after an interruption finds the same jobs by their
    keys (nothing is submitted twice).

    Parameters
    ----------
    calls : list of (function, args, kwargs)
        Picklable, module-level functions and their arguments.
    remote_info : RemoteInfo
        System, resources and failure policy (``num_inputs_per_queued_job`` is not used).
    job_names : list of str
        One name per call.
    input_files, output_files : list of str
        Added to ``remote_info``'s: staged into each job / copied back from it.

    Returns
    -------
    list
        The calls' return values, in the order of ``calls``.

    Raises
    ------
    wfl.autoparallelize.remote.QueuedJobsFailed
        Listing every failed job (unless ``ignore_failed_jobs``, where a failed call's value
        is None).
    """
    if len(job_names) != len(calls):
        raise ValueError(
            f"got {len(calls)} calls but {len(job_names)} job_names; give one name per call"
        )
    check_single_jobs(calls, remote_info, job_names)
    info = remote_info.updated(
        {
            "input_files": list(remote_info.input_files) + list(input_files),
            "output_files": list(remote_info.output_files) + list(output_files),
        }
    )
    from expyre.stale import stale_jobs_report
    from wfl.autoparallelize import plan

    if plan.active():  # a plan submits nothing
        plan.stop_at_single_jobs(calls, info, job_names)
    with stale_jobs_report():  # jobs of edited code: cancelled, and ONE warning for all
        jobs = [
            whole_call_job(info, name, function, args, kwargs)
            for (function, args, kwargs), name in zip(calls, job_names, strict=True)
        ]
    start_new_and_failed_jobs(jobs, info)
    values = gather(jobs, info, info.job_name)
    return [None if v is FAILED else v for v in values]
