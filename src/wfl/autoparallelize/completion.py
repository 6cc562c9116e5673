"""Skip-if-done made safe: the completion record of an autoparallelized operation.

When an operation finishes, its OutputSpec writes a small record beside each output file
holding the operation's key: which operation, a canonical digest of its arguments, a digest
of its input configs, and a fingerprint of its code (``expyre.keys``). A rerun whose key
matches reuses the files; a rerun whose key differs is an error naming what changed, so stale
results are never silently reused. Files with no record (made elsewhere) are reused with a
one-line notice. A record marked incomplete (some items failed: the operation returned None
for them and ``skip_failed`` left them out, or their queued jobs failed and their inputs were
stored tagged instead of results) makes the rerun redo the operation: its finished jobs are
found again and only the failed ones are resubmitted.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from ase.calculators.calculator import BaseCalculator, Calculator

from expyre.digest import CanonicalEncoder
from expyre.keys import argument_digest, job_key

# What each key component means, for error messages.
_COMPONENTS = {
    "operation": "a different operation",
    "arguments": "the same operation with different arguments",
    "inputs": "different inputs",
    "code": "different code (the operation, a function it calls, or an installed package changed)",
}


class ReusedOutputsWarning(UserWarning):
    """Existing output files without a completion record were reused as they are."""


def _canonical(obj: Any) -> Any:
    """Replace values whose state is not what defines them by what does.

    - numpy Generators: their seed sequence counts the children already spawned, which
      decides the per-item generators, so it is included next to the bit state.
    - ASE calculators: their class and parameters, not their caches of results and atoms,
      which depend on what they computed earlier in the script (e.g. before a restart).
    """
    import numpy as np

    if isinstance(obj, np.random.Generator):
        seq = getattr(obj.bit_generator, "seed_seq", None)
        seed_info = None
        if seq is not None and hasattr(seq, "entropy"):
            seed_info = (seq.entropy, tuple(seq.spawn_key), seq.n_children_spawned)
        return ("numpy.random.Generator", obj.bit_generator.state, seed_info)
    if _is_calculator(obj):
        params = getattr(obj, "parameters", None)
        if params is None:
            skip = {"atoms", "results", "_atoms", "_results"}
            params = {k: v for k, v in vars(obj).items() if k not in skip}
        return ("calculator", type(obj), _canonical(dict(params)))
    if isinstance(obj, list | tuple):
        return type(obj)(_canonical(v) for v in obj)
    if isinstance(obj, dict):
        return {k: _canonical(v) for k, v in obj.items()}
    return obj


def _is_calculator(obj: Any) -> bool:
    return isinstance(obj, BaseCalculator | Calculator) and not isinstance(obj, type)


def operation_key(
    op: Callable,
    args: Sequence,
    kwargs: dict,
    inputs: Sequence,
    initializer: Any = None,
    hash_ignore: Sequence[str] = (),
    iterable_arg: int | str = 0,
    inputs_digest: str | None = None,
) -> dict[str, str]:
    """The key of one autoparallelized operation, as stored in its completion record.

    Parameters
    ----------
    op : callable
        The operation (the function over a list of items).
    args, kwargs
        Its arguments other than the items; the OutputSpec never enters them.
    inputs : sequence of Atoms
        The input configs in order, each with its location in ``info``.
    initializer : (callable, args) or None
        The pool initializer, which may change results (e.g. seeding a global RNG).
    hash_ignore : sequence of str
        Argument names (``"initializer"`` included) left out of the key.
    iterable_arg : int or str
        Where the items go in ``op``'s arguments; a placeholder is put there so the other
        arguments bind to their real parameter names (which ``hash_ignore`` refers to).
    inputs_digest : str, optional
        ``argument_digest(list(inputs))`` when already computed (with the item store's
        per-item digests, by :func:`expyre.digest.located_copies_digests`); ``inputs`` is
        then not read.

    Returns
    -------
    dict
        ``{"operation", "arguments", "inputs", "code"}``, each a str.
    """
    ignore = list(hash_ignore)
    key_args, key_kwargs = list(args), dict(kwargs)
    if isinstance(iterable_arg, str):
        key_kwargs[iterable_arg] = None
    else:
        key_args.insert(iterable_arg, None)
    key = job_key(op, _canonical(key_args), _canonical(key_kwargs), hash_ignore=ignore)
    arguments = key.call_digest
    if initializer is not None and "initializer" not in ignore:
        arguments = argument_digest((arguments, initializer))
    return {
        "operation": f"{op.__module__}:{op.__qualname__}",
        "arguments": arguments,
        "inputs": argument_digest(list(inputs)) if inputs_digest is None else inputs_digest,
        "code": key.code_fingerprint,
    }


def incomplete_marker(n_failed: int) -> dict[str, Any]:
    """Fields added to a completion record when ``n_failed`` items failed (see module doc)."""
    return {"complete": False, "failed_items": int(n_failed)}


def _incomplete(records: list[dict], where: str) -> bool:
    failed = [r for r in records if r.get("complete") is False]
    if not failed:
        return False
    n = max(int(r.get("failed_items", 0)) for r in failed)
    print(
        f"wfl: outputs {where} are incomplete ({n} items of an earlier run failed); "
        "running the operation again: finished jobs are reused, failed ones resubmitted",
        file=sys.stderr,
    )
    return True


def _difference(record: dict, key: dict) -> str | None:
    for name, meaning in _COMPONENTS.items():
        if record.get(name) != key[name]:
            if name == "operation":
                return f"a different operation ({record.get('operation')})"
            return meaning
    return None


def outputs_done(outputs: Any, key: dict[str, str]) -> bool:
    """Whether ``outputs`` already hold this operation's complete results.

    Parameters
    ----------
    outputs : OutputSpec
        The operation's outputs.
    key : dict
        From :func:`operation_key`.

    Returns
    -------
    bool
        True: reuse the outputs. False: run the operation.

    Raises
    ------
    ValueError
        If existing outputs were made by a different operation, arguments, inputs or code,
        or some output files exist without a record while others are missing.
    """
    if outputs.overwrite:
        return False
    if outputs.files is None:
        record = outputs.completion_record
        if not outputs.all_written() or record is None:
            return False
        what = _difference(record, key)
        if what is not None:
            raise ValueError(
                f"in-memory outputs {outputs!r} already hold results made by {what}; "
                "use a new OutputSpec or pass overwrite=True"
            )
        return not _incomplete([record], "in memory")

    records = outputs.read_records()
    if not records:
        return False
    unrecorded = [str(p) for p, rec in records.items() if rec is None]
    for path, record in records.items():
        if record is None:
            continue
        what = _difference(record, key)
        if what is not None:
            raise ValueError(
                f"outputs in {path} were made by {what}; pass overwrite=True or delete them"
            )
    if len(records) < len(outputs.files):
        if unrecorded:
            from wfl.configset import OutputsExistError  # a FileExistsError, as in wfl 0.3.5

            missing = [str(p) for p in outputs.files if p not in records]
            raise OutputsExistError(
                f"some output files exist without a completion record ({', '.join(unrecorded)}) "
                f"while others are missing ({', '.join(missing)}); "
                "pass overwrite=True or delete them"
            )
        # this very operation was interrupted while renaming its files: redo it
        return False
    recorded = [rec for rec in records.values() if rec is not None]
    if _incomplete(recorded, ", ".join(str(p) for p in records)):
        return False
    if unrecorded:
        warnings.warn(
            f"reusing existing outputs {', '.join(unrecorded)} that have no completion record "
            "(made elsewhere?); delete them or pass overwrite=True to recompute",
            ReusedOutputsWarning,
            stacklevel=3,
        )
    return True


# an input's location in the inputs (wfl.configset.LOC_KEY; not imported: jobs stay light)
_LOC_KEY = "_ConfigSet_loc"


def input_digests(inputs: Sequence) -> list[bytes]:
    """Digest of each input by value, without its location in the inputs.

    The location is left out so that an item keeps its digest (and its key in the item
    store) when inputs are added or reordered around it.
    """
    out = []
    for item in inputs:
        info = getattr(item, "info", None)
        if not isinstance(info, dict) or _LOC_KEY not in info:
            out.append(CanonicalEncoder().digest(item))
            continue
        loc = info.pop(_LOC_KEY)  # the caller's own copy of the input: put back at once
        try:
            out.append(CanonicalEncoder().digest(item))
        finally:
            info[_LOC_KEY] = loc
    return out
