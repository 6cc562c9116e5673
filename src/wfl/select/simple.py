"""Select configurations by a test on each one, or by their positions in the inputs.

Both keep each selected configuration at its input's location, so a selection from a
ConfigSet of several files or nested lists keeps that structure (and an OutputSpec with one
file per input file receives each selection in the file of its input).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ase import Atoms

from wfl.autoparallelize import autoparallelize, autoparallelize_docstring
from wfl.configset import LOC_KEY, ConfigSet, OutputSpec

__all__ = ["by_bool_func", "by_index"]


def _by_bool_func(atoms_list: list[Atoms], at_filter: Callable[[Atoms], Any]) -> list:
    """Keep the configurations for which ``at_filter`` is true.

    Parameters
    ----------
    atoms_list : list of Atoms
        Configurations to test.
    at_filter : callable
        Function of one Atoms returning a truth value: true keeps the configuration. A
        module-level function can run in a pool or a queued job; a lambda runs here only.

    Returns
    -------
    list
        Per input: the Atoms if selected, else an empty list (nothing stored, which is not
        a failure).
    """
    if not callable(at_filter):
        raise ValueError(
            f"by_bool_func: at_filter={at_filter!r} is not callable; give a function of one "
            "Atoms returning True to keep it"
        )
    # [] rather than None: an item that is not selected is not a failed item
    return [atoms if at_filter(atoms) else [] for atoms in atoms_list]


def _is_lambda(func: Any) -> bool:
    return getattr(func, "__name__", None) == "<lambda>"


def by_bool_func(*args: Any, **kwargs: Any) -> ConfigSet:
    at_filter = kwargs.get("at_filter", args[2] if len(args) > 2 else None)
    # a lambda cannot be pickled into a pool worker: it runs in this process (the caller
    # can still ask otherwise with autopara_info, and then gets the pickling error)
    serial = {"num_python_subprocesses": 0} if _is_lambda(at_filter) else {}
    return autoparallelize(
        _by_bool_func,
        *args,
        default_autopara_info={"num_inputs_per_python_subprocess": 100, **serial},
        **kwargs,
    )


autoparallelize_docstring(by_bool_func, _by_bool_func, "Atoms")


def _copies_at_locations(atoms_list: list[Atoms], copies: dict[str, int]) -> list:
    """Keep the configurations whose location is in ``copies``, repeated as many times.

    Parameters
    ----------
    atoms_list : list of Atoms
        Configurations, each with its location in ``info["_ConfigSet_loc"]``.
    copies : dict of str to int
        Location -> number of copies wanted. Locations not in it are not selected.

    Returns
    -------
    list
        Per input: ``[]`` (not selected), the Atoms (one copy), or a list of copies (stored
        under the input's location).
    """
    results: list = []
    for atoms in atoms_list:
        n = copies.get(atoms.info[LOC_KEY], 0)
        results.append([] if n == 0 else atoms if n == 1 else [atoms.copy() for _ in range(n)])
    return results


def by_index(
    inputs: ConfigSet | Iterable[Atoms] | str,
    outputs: OutputSpec,
    indices: Iterable[int],
) -> ConfigSet:
    """Select configurations by their position in the inputs (counted from 0 in iteration order).

    Parameters
    ----------
    inputs : ConfigSet, or anything ConfigSet accepts
        Source configurations.
    outputs : OutputSpec
        Where the selection goes. Each selected configuration keeps its input's location; a
        configuration whose index is given several times is stored that many times, as a
        list under its location. If ``outputs`` already hold this selection of these
        inputs, it is not redone.
    indices : iterable of int
        Positions to select, in any order. Values outside ``0 .. len(inputs) - 1``
        (negative ones included) are ignored.

    Returns
    -------
    ConfigSet
        The selected configurations, in input order.
    """
    if not isinstance(inputs, ConfigSet):
        inputs = ConfigSet(inputs)
    counts: dict[int, int] = {}
    for index in indices:
        if isinstance(index, bool) or not isinstance(index, int | _np_integer()):
            raise ValueError(
                f"by_index: indices holds {index!r} ({type(index).__name__}); give integer "
                "positions in the inputs, e.g. [0, 3, 7]"
            )
        counts[int(index)] = counts.get(int(index), 0) + 1
    copies = {}
    for position, (loc, _atoms) in enumerate(inputs.iter_located()):
        if position in counts:
            copies[loc] = counts[position]
    # the selection is an operation like any other (completion record, skip-if-done, stale
    # outputs refused), over the locations it picked; it is cheap, so it always runs here
    return autoparallelize(
        _copies_at_locations,
        inputs,
        outputs,
        copies,
        default_autopara_info={
            "num_inputs_per_python_subprocess": 1000,
            "num_python_subprocesses": 0,
        },
    )


def _np_integer() -> type:
    import numpy as np

    return np.integer
