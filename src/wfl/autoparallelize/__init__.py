"""Run operations over ConfigSets in a Python process pool or as queued jobs.

Public API: :func:`autoparallelize`, :func:`autoparallelize_docstring`, :class:`AutoparaInfo`
and :class:`RemoteInfo`, each loaded on first use.
"""

import importlib
from typing import Any

__all__ = ["AutoparaInfo", "RemoteInfo", "autoparallelize", "autoparallelize_docstring"]

# Loaded on first use: a queued job unpickles wfl.autoparallelize.in_job.run_chunk_in_job, which
# imports this package; importing base here would pull ConfigSet and ase.io (most of a job's
# start-up time) into every job, which never needs them. Lazy also keeps the pool path
# independent of the queued path's modules.
_LAZY = {
    "AutoparaInfo": "wfl.autoparallelize.autoparainfo",
    "RemoteInfo": "wfl.autoparallelize.remoteinfo",
    "autoparallelize": "wfl.autoparallelize.base",
    "autoparallelize_docstring": "wfl.autoparallelize.docstring",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'wfl.autoparallelize' has no attribute {name!r}")
