"""Per-item results of queued operations: each item's key, and reading and writing the store.

An item's key is a digest of

* the operation (``module:qualname``),
* its other arguments, by the rules of the job key (``hash_ignore`` names left out, the
  initializer in unless ``"initializer"`` is ignored, calculators by their parameters),
* the item itself by value -- everything but its location in the inputs, so an item keeps
  its result when inputs are added, removed or reordered around it (the result is stored at
  the item's location of *this* run),
* the item's own random generator, when the operation takes ``rng`` (spawned in input
  order, so it depends on the item's position: a moved item with an ``rng`` is computed
  again, as it must be for results to equal a full run),
* the code fingerprint of the operation and the code it reaches.

Which chunk or job computed an item is not part of it: that is what lets a rerun with
another ``num_inputs_per_queued_job`` reuse every item. The store itself is
:mod:`expyre.itemstore` (``_expyre/items.db``); this module turns items and results into
its keys and bytes.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cloudpickle

from expyre.digest import CanonicalEncoder
from expyre.itemstore import ItemStore, StoredItem
from wfl.autoparallelize.completion import _canonical, input_digests, operation_key

__all__ = ["ItemKeys", "harvest_job", "item_keys", "load_items", "store_job_values"]


@dataclass(frozen=True)
class ItemKeys:
    """The keys of one call's items, and what they share.

    Attributes
    ----------
    operation : str
        ``module:qualname`` of the operation.
    arguments : str
        Digest of its other arguments.
    code : str
        Code fingerprint.
    keys : list of str
        One key per item, in input order.
    """

    operation: str
    arguments: str
    code: str
    keys: list[str]


def item_keys(
    op: Callable,
    args: Sequence[Any],
    kwargs: dict[str, Any],
    items: Sequence[Any],
    item_rngs: Sequence[Any] | None,
    initializer: Any,
    hash_ignore: Sequence[str],
    iterable_arg: int | str,
    value_digests: Sequence[bytes] | None = None,
) -> ItemKeys:
    """Compute the key of every item of one call (see the module docstring).

    Parameters
    ----------
    op, args, kwargs, initializer, hash_ignore, iterable_arg
        As given to :func:`wfl.autoparallelize.completion.operation_key` (``kwargs``
        without the caller's ``rng``: each item's own generator counts instead).
    items : sequence
        The items (their location in ``info`` is left out of their key).
    item_rngs : sequence of numpy.random.Generator, or None
        One generator per item.
    value_digests : sequence of bytes, optional
        :func:`wfl.autoparallelize.completion.input_digests` of ``items``, if computed
        already (for the operation's completion key).
    """
    shared = operation_key(op, args, kwargs, [], initializer, hash_ignore, iterable_arg)
    prefix = f"item\n{shared['operation']}\n{shared['arguments']}\n{shared['code']}\n".encode()
    if value_digests is None:
        value_digests = input_digests(items)
    keys = []
    for n, digest in enumerate(value_digests):
        h = hashlib.sha256(prefix)
        h.update(digest)
        if item_rngs is not None:
            h.update(b"rng:" + CanonicalEncoder().digest(_canonical(item_rngs[n])))
        keys.append(h.hexdigest())
    return ItemKeys(shared["operation"], shared["arguments"], shared["code"], keys)


def load_items(store: ItemStore, keys: Sequence[str]) -> dict[str, Any]:
    """The stored results of those of ``keys`` that have one (key -> result)."""
    found = store.lookup(keys)
    return {key: cloudpickle.loads(value) for key, value in found.items()}


def store_job_values(store: ItemStore, keys: ItemKeys, job_id: str, values: dict[str, Any]) -> int:
    """Store results computed by job ``job_id`` (item key -> result); None results are not
    stored (a failed item is tried again by the next run). Returns how many were new."""
    entries = [
        StoredItem(key, keys.operation, keys.arguments, keys.code, cloudpickle.dumps(value), job_id)
        for key, value in values.items()
        if value is not None
    ]
    return store.put(entries)


def harvest_job(store: ItemStore, keys: ItemKeys, job: Any, value: Any = None) -> int:
    """Store what a finished job computed: its whole result, or the items it saved before it
    failed or was killed (``expyre.partial``). Returns how many items were new.

    Parameters
    ----------
    store : ItemStore
    keys : ItemKeys
        The call's keys (operation, arguments and code are stored with each item).
    job : ExPyRe
        A finished job whose items were claimed in the store.
    value : list, optional
        The job's result when already loaded (None: read its stage directory).
    """
    from expyre import stagedir
    from expyre.partial import load_partial

    claimed = store.claimed_keys(job.id)
    if not claimed:
        return 0
    if value is None:
        record = stagedir.read_record(job.stage_dir)
        if record is not None and record.get("ok"):
            try:
                value = stagedir.load_value(job.stage_dir, record, job.id)
            except RuntimeError as exc:
                print(f"wfl: {exc}; its items are computed again", file=sys.stderr)
                value = None
    if isinstance(value, list) and len(value) == len(claimed):
        by_position = dict(enumerate(value))
    else:
        by_position = load_partial(job.stage_dir)
    values = {claimed[n]: v for n, v in by_position.items() if 0 <= n < len(claimed)}
    return store_job_values(store, keys, job.id, values)
