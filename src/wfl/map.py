"""Apply any picklable per-configuration function: ``map(inputs, outputs, func)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ase import Atoms

from wfl.autoparallelize import autoparallelize, autoparallelize_docstring
from wfl.configset import ConfigSet


def _map(
    atoms_list: list[Atoms],
    func: Callable,
    args: Sequence = (),
    kwargs: dict | None = None,
) -> list:
    """Call ``func(atoms, *args, **kwargs)`` on each configuration.

    Parameters
    ----------
    atoms_list : list of Atoms
        Configurations (``func`` may change them in place; they are copies).
    func : callable
        Module-level (picklable) function of one Atoms returning an Atoms, a list of Atoms
        (stored under the input's location), or None (a failed item). If it returns None
        for an item it changed in place, that item still counts as failed.
        Also accepted as ``map_func=`` (its name in wfl 0.3.5).
    args : sequence, optional
        Further positional arguments of ``func``.
    kwargs : dict, optional
        Keyword arguments of ``func``.

    Returns
    -------
    list
        ``func``'s result for each configuration.
    """
    if not callable(func):
        raise ValueError(f"map: func={func!r} is not callable; give a function of one Atoms")
    kwargs = dict(kwargs or {})
    return [func(atoms, *args, **kwargs) for atoms in atoms_list]


def map(*args: Any, **kwargs: Any) -> ConfigSet:  # noqa: A001 - the user-facing name, as in wfl
    if "map_func" in kwargs:
        # wfl 0.3.5's keyword for the function; renamed here, not in _map, so that records
        # and job keys made with func= stay the same
        if "func" in kwargs:
            raise TypeError("map() got both func= and map_func= (the same argument); give one")
        kwargs["func"] = kwargs.pop("map_func")
    return autoparallelize(
        _map, *args, default_autopara_info={"num_inputs_per_python_subprocess": 10}, **kwargs
    )


autoparallelize_docstring(map, _map, "Atoms")
