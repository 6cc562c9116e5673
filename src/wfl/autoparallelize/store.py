"""Store an operation's results at their inputs' locations (shared by pool and queued paths)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class FailedItemsError(RuntimeError):
    """Some items failed and ``skip_failed`` was False."""


def store_results(
    outputs: Any, results: Sequence, locs: Sequence[str], skip_failed: bool, owned: bool = False
) -> int:
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
    owned : bool
        The results are this call's own objects (unpickled from queued jobs or the item
        store), so an Atoms met only once among them is stored without a copy. One met
        twice (an item repeated in the inputs, one object returned for two items) is
        copied: each location must get its own.

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
    once = _met_once(results) if owned else set()
    for loc, res in zip(locs, results, strict=True):
        if res is None:
            continue
        if id(res) in once:
            outputs._store_owned(res, loc)
        else:
            outputs.store(res, loc)
    return len(failed)


def _met_once(results: Sequence) -> set[int]:
    """ids of the Atoms results met exactly once among ``results`` (inside lists too)."""
    from ase import Atoms

    seen: dict[int, int] = {}

    def walk(value: Any) -> None:
        if isinstance(value, Atoms):
            seen[id(value)] = seen.get(id(value), 0) + 1
        elif isinstance(value, list | tuple):
            for sub in value:
                walk(sub)

    for res in results:
        walk(res)
    return {id(res) for res in results if isinstance(res, Atoms) and seen[id(res)] == 1}
