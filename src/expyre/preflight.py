"""Preflight: before the first job goes to a system, check that its Python can run our jobs.

A job runs ``<system commands>`` then ``<python_cmd> -m expyre.runner``. If that Python
cannot import ``expyre`` and the packages registered by its clients
(:func:`expyre.clients.register_client_package`), or has other versions of them than the
driver, every
job would fail after queueing, possibly hours later. :func:`check_system` runs the same
commands and Python once per system per driver process (a few hundred ms over the shared
ssh connection) and turns any problem into one error that says what to change.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import threading
from typing import Any

from expyre.clients import remotely_checked_packages

__all__ = ["PreflightError", "check_system", "probe_versions"]

_MARKER = "EXPYRE_PREFLIGHT "

# Runs on the remote Python (any 3.x): report interpreter and each module's version/location.
# Kept free of f-strings and walrus so an old python3 still reports instead of crashing.
_PROBE = r"""
import json, sys
def _version(name, mod):
    v = getattr(mod, "__version__", None)
    if v:
        return str(v)
    try:
        from importlib import metadata
    except ImportError:
        return "unknown"
    dists = []
    try:
        dists = metadata.packages_distributions().get(name, [])
    except Exception:
        pass
    for dist in list(dists) + [name] + DISTRIBUTIONS:
        try:
            return metadata.version(dist)
        except Exception:
            continue
    return "unknown"
report = {"python": sys.executable, "python_version": sys.version.split()[0], "modules": {}}
for name in MODULES:
    try:
        mod = __import__(name)
    except Exception as exc:
        report["modules"][name] = {"error": "%s: %s" % (type(exc).__name__, exc)}
    else:
        report["modules"][name] = {"version": _version(name, mod),
                                   "file": getattr(mod, "__file__", None)}
print(MARKER + json.dumps(report))
"""


class PreflightError(RuntimeError):
    """A system's Python cannot run expyre jobs; the message says what to change."""


def probe_versions() -> dict[str, Any]:
    """What this (driver) process has: the same report the remote probe prints.

    Returns
    -------
    dict
        ``{"python": ..., "python_version": ..., "modules": {name: {"version", "file"}}}``.
    """
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(_probe_source(), {"__name__": "expyre_preflight"})
    return _parse_report(out.getvalue())


def _probe_source() -> str:
    modules = remotely_checked_packages()
    return (
        f"MODULES = {modules!r}\nDISTRIBUTIONS = {_distributions(modules)!r}\n"
        f"MARKER = {_MARKER!r}\n{_PROBE}"
    )


def _distributions(modules: tuple[str, ...]) -> list[str]:
    """The distributions that ship ``modules`` here: where the remote probe looks for their
    versions when its Python cannot map packages to distributions (before 3.10)."""
    from expyre import packages_distributions

    try:
        known = packages_distributions()
    except Exception:  # noqa: BLE001 - only a fallback for old pythons
        return []
    return sorted({dist for name in modules for dist in known.get(name, [])})


def _parse_report(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(_MARKER):
            try:
                return json.loads(line[len(_MARKER) :])
            except json.JSONDecodeError:
                return None
    return None


_checked: dict[tuple, dict[str, Any]] = {}
_checked_lock = threading.Lock()


def check_system(
    system: Any, *, force: bool = False, python_cmd: str | None = None
) -> dict[str, Any]:
    """Check once per driver process that ``system`` can run expyre jobs.

    Runs the system's ``commands`` followed by ``<python_cmd> -c <probe>`` through the
    system's transport (so over ssh for remote hosts), and compares the versions of
    ``expyre`` and the registered client packages found there with this process's.

    Parameters
    ----------
    system : expyre.system.System
        The system (uses ``system.config`` and ``system.run``).
    force : bool
        Check again even if this system passed before in this process.
    python_cmd : str, optional
        Check this python instead of the system's ``python_cmd`` (a job's own choice).

    Returns
    -------
    dict
        The remote report (python, python_version, modules).

    Raises
    ------
    PreflightError
        Naming the host, the python used and what to put in the system's ``commands``.
    """
    config = system.config
    if python_cmd is not None and python_cmd != config.python_cmd:
        config = dataclasses.replace(config, python_cmd=python_cmd)
    key = (config.name, config.host, config.python_cmd, tuple(config.commands))
    with _checked_lock:
        if key in _checked and not force:
            return _checked[key]
    # `|| true`: a missing python must come back as our message, not as a retried failure
    script = "\n".join(
        [*config.commands, f"{config.python_cmd} -c {shlex.quote(_probe_source())} || true"]
    )
    proc = system.run(["bash", "-c", script], what="check that its python can run expyre jobs")
    report = _parse_report(proc.stdout)
    where = f"system {config.name!r} (host {config.host or 'this machine'}, config {config.source})"
    fix = (
        "make them importable there: install this project into that python, or add a line "
        'such as "export PYTHONPATH=/path/to/project/src:$PYTHONPATH" (or "module load ...", '
        '"source /path/to/venv/bin/activate") to the system\'s "commands" in config.json, '
        'or set its "python_cmd"'
    )
    if report is None:
        raise PreflightError(
            f"{where}: python_cmd {config.python_cmd!r} did not run (stderr: "
            f'{proc.stderr.strip()[-500:]!r}); jobs there would fail. Set "python_cmd" to a '
            f"working python 3 there, or {fix}"
        )
    local = probe_versions() or {"modules": {}}
    problems = []
    for name in remotely_checked_packages():
        theirs = report.get("modules", {}).get(name, {})
        ours = local.get("modules", {}).get(name, {})
        if "error" in theirs:
            problems.append(f"cannot import {name} ({theirs['error']})")
        elif (
            ours.get("version") not in (None, "unknown")
            and theirs.get("version") not in (None, "unknown")
            and ours["version"] != theirs["version"]
        ):
            problems.append(
                f"has {name} {theirs['version']} ({theirs.get('file')}) but this driver has "
                f"{ours['version']}"
            )
    if problems:
        raise PreflightError(
            f"{where}: python {report.get('python') or config.python_cmd} "
            f"(python_cmd {config.python_cmd!r}) "
            + "; ".join(problems)
            + f". Jobs there would fail: {fix}"
        )
    with _checked_lock:
        _checked[key] = report
    return report
