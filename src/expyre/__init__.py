"""expyre -- execute Python remotely: one function call as a restartable queued job.

Public entry points (imported lazily, so ``python -m expyre.runner`` inside a job stays
light): :class:`expyre.func.ExPyRe`, :class:`expyre.resources.Resources`,
:func:`expyre.poll.wait_for_jobs`, :class:`expyre.func.RemoteJobError`.
"""

from __future__ import annotations

import functools
import importlib
from typing import Any

__all__ = [
    "ExPyRe",
    "ExPyReJobDiedError",
    "ExPyReTimeoutError",
    "JobDiedError",
    "JobNotReady",
    "RemoteJobError",
    "Resources",
    "systems",
    "wait_for_jobs",
    "__version__",
]


@functools.cache
def packages_distributions() -> dict[str, list[str]]:
    """:func:`importlib.metadata.packages_distributions`, read once per process.

    It scans the file list of every installed distribution (~1-2 s in a large environment),
    and the package version, the code fingerprint and the system check all need it.
    """
    from importlib import metadata

    return metadata.packages_distributions()


def _installed_version() -> str:
    """Version of the installed distribution that ships this package (whatever its name)."""
    from importlib.metadata import PackageNotFoundError, version

    for dist in packages_distributions().get(__name__, []):
        try:
            return version(dist)
        except PackageNotFoundError:
            continue
    return "0+unknown"  # running from a source tree that was never installed


_LAZY = {
    "ExPyRe": "expyre.func",
    "ExPyReJobDiedError": "expyre.errors",
    "ExPyReTimeoutError": "expyre.errors",
    "JobDiedError": "expyre.errors",
    "systems": "expyre.config",
    "RemoteJobError": "expyre.errors",
    "JobNotReady": "expyre.errors",
    "Resources": "expyre.resources",
    "wait_for_jobs": "expyre.poll",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":  # looked up on demand: reading package metadata is slow
        global __version__
        __version__ = _installed_version()
        return __version__
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'expyre' has no attribute {name!r}")
