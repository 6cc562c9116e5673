"""Checks made before the first job is submitted (or the first item computed).

Everything that can be known to fail before the queue wait is checked before it: a mistake
found only after the jobs ran costs the whole wait (a day, for DFT), and the message then
comes from deep inside the machinery. Each check turns one mistake into one line naming the
input, its value and the fix; all lines found are raised together as one
:class:`PreflightError`, before anything is staged or submitted.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from wfl.autoparallelize.remoteinfo import RemoteInfo


class PreflightError(ValueError):
    """Inputs that would fail later; nothing was submitted or computed."""

    def __init__(self, what: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{what}: nothing was submitted or run, because:\n{lines}")


def output_problems(outputs: Any) -> list[str]:
    """Output files that cannot be written, each as one line with the fix.

    The directory is created (as storing would) and the temporary file the results are
    written to is created and removed again, so a read-only or missing location fails here.
    """
    problems = []
    for path in getattr(outputs, "files", None) or []:
        path = Path(path)
        partial = outputs.partial_path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            existed = partial.exists()
            with open(partial, "a"):
                pass
            if not existed:
                partial.unlink()
        except OSError as exc:
            problems.append(
                f"OutputSpec file {str(path)!r} cannot be written ({exc.strerror or exc} for "
                f"{exc.filename or partial}); give a path in a writable directory"
            )
    return problems


def remote_problems(remote_info: RemoteInfo) -> list[str]:
    """Problems of the system, resources and input files a RemoteInfo asks for."""
    from expyre.config import ConfigError, load_config
    from expyre.resources import NoPartitionFits, Resources, select_partition

    problems = []
    for name in remote_info.input_files:
        if not Path(name).exists():
            problems.append(
                f"RemoteInfo input_files entry {name!r} does not exist (relative to "
                f"{os.getcwd()}); create it, or fix or remove the entry"
            )
    try:
        resources = Resources.coerce(remote_info.resources)
    except ValueError as exc:
        problems.append(f"RemoteInfo resources: {exc}")
        resources = None
    try:
        system = load_config().system(remote_info.sys_name)
    except ConfigError as exc:
        problems.append(f"RemoteInfo sys_name={remote_info.sys_name!r}: {exc}")
        return problems
    problems += _system_python_problems(remote_info.sys_name)
    if resources is not None:
        max_nodes = 1 if system.scheduler == "local" else None
        try:
            select_partition(
                resources,
                system.partitions,
                remote_info.exact_fit,
                remote_info.partial_node,
                max_nodes,
            )
        except NoPartitionFits as exc:
            hint = ""
            if not remote_info.partial_node:
                try:
                    select_partition(
                        resources, system.partitions, remote_info.exact_fit, True, max_nodes
                    )
                    hint = ' (it fits with "partial_node": true in RemoteInfo)'
                except NoPartitionFits:
                    pass
            problems.append(
                f"RemoteInfo resources {remote_info.resources!r} on system {system.name!r}: "
                f"{exc}{hint}"
            )
    return problems


def _system_python_problems(sys_name: str | None) -> list[str]:
    """The system's python (after its ``commands``) must import expyre and wfl, as here.

    Checked once per system and process (expyre caches it), before any job is even staged.
    """
    from expyre.preflight import PreflightError as SystemPreflightError
    from expyre.preflight import check_system
    from expyre.system import get_system

    try:
        check_system(get_system(sys_name))
    except SystemPreflightError as exc:
        return [str(exc)]
    return []


def pickling_problems(
    named_values: Mapping[str, Any], where: str, purpose: str = "sent to a queued job"
) -> list[str]:
    """Arguments that cannot be pickled (sent to a job, or digested), each named, with the fix."""
    import cloudpickle

    problems = []
    for name, value in named_values.items():
        try:
            cloudpickle.dumps(value)
        except Exception as exc:  # noqa: BLE001 - pickling raises many types; all are this error
            shown = repr(value)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            problems.append(
                f"argument {name} = {shown} of {where} cannot be {purpose} "
                f"({type(exc).__name__}: {exc}); pass a picklable value instead (e.g. a "
                "calculator as a (Class, args, kwargs) tuple, built in the job)"
            )
    return problems


def named_arguments(
    op: Callable,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    iterable_arg: int | str | None = 0,
) -> dict[str, Any]:
    """``op``'s arguments other than its items, by parameter name where it can be told.

    ``iterable_arg`` is where the items go (None: the call has no items).
    """
    named: dict[str, Any] = {"function": op}
    try:
        params = [
            p.name
            for p in inspect.signature(op).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    if isinstance(iterable_arg, int) and iterable_arg < len(params):
        params.pop(iterable_arg)
    for i, value in enumerate(args):
        named[params[i] if i < len(params) else f"#{i + 1} (positional)"] = value
    named.update(kwargs)
    return named


def check_queued_call(
    op: Callable,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    remote_info: RemoteInfo,
    iterable_arg: int | str = 0,
    initializer: Any = None,
) -> None:
    """Everything about a queued call that can fail before its jobs run, outputs aside.

    Raises
    ------
    PreflightError
        Listing every problem found, each naming the input, its value and the fix.
    """
    named = named_arguments(op, args, kwargs, iterable_arg)
    if initializer is not None:
        named["initializer"] = initializer
    name = getattr(op, "__qualname__", repr(op))
    problems = remote_problems(remote_info) + pickling_problems(named, name)
    if problems:
        raise PreflightError(f"{name} as queued jobs ({remote_info.job_name})", problems)


def check_outputs(op: Callable, outputs: Any) -> None:
    """What can fail after the work, local or queued: the outputs cannot be written.

    Raises
    ------
    PreflightError
        Naming each output file that cannot be written.
    """
    problems = output_problems(outputs)
    if problems:
        raise PreflightError(getattr(op, "__qualname__", repr(op)), problems)


def check_single_jobs(
    calls: Sequence[tuple[Callable, Sequence[Any], Mapping[str, Any]]],
    remote_info: RemoteInfo,
    job_names: Sequence[str],
) -> None:
    """The checks of :func:`check_queued_operation` for whole calls run as jobs (fits).

    Raises
    ------
    PreflightError
        Listing every problem found.
    """
    problems = remote_problems(remote_info)
    for (function, args, kwargs), job_name in zip(calls, job_names, strict=True):
        named = named_arguments(function, args, kwargs, iterable_arg=None)
        problems += pickling_problems(named, f"job {job_name}")
    if problems:
        raise PreflightError(f"{remote_info.job_name} as queued jobs", problems)
