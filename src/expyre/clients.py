"""Packages built on expyre that register themselves: their code counts, and must exist remotely.

expyre knows nothing of the libraries that use it. A library whose own functions run inside
jobs (wfl, for one) registers its top-level package when it is imported:

- its code is fingerprinted like the user's script (:mod:`expyre.fingerprint`), so editing
  the library's operations invalidates jobs made by the old code, wherever it is installed;
- a system's Python must import it, at the driver's version (:mod:`expyre.preflight`), or
  every job there would fail after its queue wait.
"""

from __future__ import annotations

import re
import threading

__all__ = ["fingerprinted_packages", "register_client_package", "remotely_checked_packages"]

_lock = threading.Lock()
# replaced whole on registration, so readers (every object a fingerprint reaches) take no lock
_fingerprinted: frozenset[str] = frozenset()
# expyre itself is always checked: the job runner is ``python -m expyre.runner``
_checked: list[str] = ["expyre"]


def register_client_package(
    name: str, fingerprint: bool = True, check_remotely: bool = True
) -> None:
    """Register a top-level package whose functions run inside expyre jobs.

    Parameters
    ----------
    name : str
        Top-level import name, e.g. ``"wfl"``.
    fingerprint : bool
        Count its code like user code in job keys (edits make new jobs).
    check_remotely : bool
        Require it, at this process's version, on every system before the first job goes
        there.
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_]\w*", name):
        raise ValueError(
            f"register_client_package: {name!r} is not a top-level package name; give the "
            "name you import, e.g. 'wfl'"
        )
    global _fingerprinted
    with _lock:
        if fingerprint:
            _fingerprinted = _fingerprinted | {name}
        if check_remotely and name not in _checked:
            _checked.append(name)


def fingerprinted_packages() -> frozenset[str]:
    """Top-level packages whose code always counts as user code."""
    return _fingerprinted


def remotely_checked_packages() -> tuple[str, ...]:
    """Top-level packages a system's Python must import (``expyre`` first)."""
    with _lock:
        return tuple(_checked)
