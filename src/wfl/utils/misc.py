"""Small helpers that operations written for wfl 0.3.5 import from ``wfl.utils.misc``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ase import Atoms

__all__ = ["atoms_to_list", "chunks", "dict_tuple_keys_to_str"]


def atoms_to_list(atoms: Atoms | Sequence[Atoms]) -> Sequence[Atoms]:
    """``[atoms]`` for one Atoms; anything else (a list, a ConfigSet) unchanged.

    Lets an operation accept one configuration or several.
    """
    return [atoms] if isinstance(atoms, Atoms) else atoms


def chunks(arr: Sequence[Any], n: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of ``arr`` of length ``n`` (the last may be shorter).

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer.
    """
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"chunks: n={n!r} must be a positive integer (the chunk length)")
    for start in range(0, len(arr), n):
        yield arr[start : start + n]


def dict_tuple_keys_to_str(error_dict: dict) -> dict:
    """A copy of ``error_dict`` whose tuple keys are strings ``"(a,b)"``, so it is JSON-able."""
    return {
        ("(" + ",".join(str(part) for part in key) + ")" if isinstance(key, tuple) else key): value
        for key, value in error_dict.items()
    }
