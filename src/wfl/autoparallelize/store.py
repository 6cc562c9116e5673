"""Store an operation's results at their inputs' locations (shared by pool and queued paths)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class FailedItemsError(RuntimeError):
    """Some items failed and ``skip_failed`` was False."""


def store_results(outputs: Any, results: Sequence, locs: Sequence[str], skip_failed: bool) -> int:
    """Store ``results[i]`` at input location ``locs[i]``, in input order.

    Pairing each result with its own input's location (never re-numbering after a failure)
    is what keeps a failed item from shifting later results onto other inputs' locations.

    Parameters
    ----------
    outputs : OutputSpec
        Where results go. Not closed here.
    results : sequence
        One per input: Atoms, (nested) list of Atoms, or None for a failed item.
    locs : sequence of str
        The inputs' locations (``atoms.info["_ConfigSet_loc"]``).
    skip_failed : bool
        True: failed items are left out. False: raise after storing nothing.

    Returns
    -------
    int
        Number of failed items.

    Raises
    ------
    FailedItemsError
        If items failed and ``skip_failed`` is False, naming their locations.
    """
    if len(results) != len(locs):
        raise RuntimeError(f"got {len(results)} results for {len(locs)} inputs; need one each")
    failed = [loc for loc, res in zip(locs, results, strict=True) if res is None]
    if failed and not skip_failed:
        shown = ", ".join(repr(loc) for loc in failed[:10])
        more = f" and {len(failed) - 10} more" if len(failed) > 10 else ""
        raise FailedItemsError(
            f"{len(failed)} of {len(locs)} items failed (input locations {shown}{more}); "
            "fix the cause, or pass autopara_info={'skip_failed': True} to drop them"
        )
    for loc, res in zip(locs, results, strict=True):
        if res is not None:
            outputs.store(res, loc)
    return len(failed)
