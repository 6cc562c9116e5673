"""Run operations over ConfigSets in a Python process pool or as queued jobs.

Public API: :func:`autoparallelize`, :func:`autoparallelize_docstring`, :class:`AutoparaInfo`,
and ``RemoteInfo`` (loaded on first use, from ``wfl.autoparallelize.remoteinfo``).
"""

from typing import Any

from wfl.autoparallelize.autoparainfo import AutoparaInfo
from wfl.autoparallelize.base import autoparallelize
from wfl.autoparallelize.docstring import autoparallelize_docstring

__all__ = ["AutoparaInfo", "RemoteInfo", "autoparallelize", "autoparallelize_docstring"]


def __getattr__(name: str) -> Any:
    # lazy, so importing the pool path never depends on the queued path's modules
    if name == "RemoteInfo":
        from wfl.autoparallelize.remoteinfo import RemoteInfo

        return RemoteInfo
    raise AttributeError(f"module 'wfl.autoparallelize' has no attribute {name!r}")
