"""Copy a calculator's results into ``Atoms.info``/``Atoms.arrays`` under a prefix.

Results live in ``info``/``arrays`` rather than on an attached calculator so they survive
pickling, extxyz files and ``Atoms.copy()``, and several calculators' results can sit side
by side (``dft_energy``, ``emt_energy``, ...).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from ase import Atoms

# Names ASE uses for per-configuration and per-atom properties.
PER_CONFIG_PROPERTIES = frozenset({"energy", "free_energy", "stress", "dipole", "magmom"})
PER_ATOM_PROPERTIES = frozenset({"forces", "energies", "stresses", "magmoms", "charges"})


def save_results(
    atoms: Atoms,
    results: Mapping[str, Any],
    prefix: str,
    properties: Iterable[str] | None = None,
) -> Atoms:
    """Store ``results`` on ``atoms``: per-atom ones in ``arrays``, the rest in ``info``.

    Parameters
    ----------
    atoms : Atoms
        Changed in place (and returned).
    results : mapping
        ``calc.results``-style dict: energies in eV, forces in eV/Å, stress in eV/Å³
        (Voigt order, ASE sign convention).
    prefix : str
        Put before each name, e.g. ``"calc_"`` -> ``info["calc_energy"]``.
    properties : iterable of str, optional
        Only these names (default: all results).

    Returns
    -------
    Atoms
    """
    wanted = None if properties is None else set(properties)
    for name, value in results.items():
        if wanted is not None and name not in wanted:
            continue
        if _is_per_atom(name, value, len(atoms)):
            atoms.arrays[prefix + name] = np.array(value, dtype=float, copy=True)
        elif isinstance(value, np.ndarray):
            atoms.info[prefix + name] = value.copy()
        else:
            atoms.info[prefix + name] = _plain(value)
    return atoms


def _is_per_atom(name: str, value: Any, n_atoms: int) -> bool:
    if name in PER_ATOM_PROPERTIES:
        return True
    if name in PER_CONFIG_PROPERTIES:
        return False
    arr = np.asarray(value)
    return arr.ndim >= 1 and arr.shape[0] == n_atoms and arr.dtype.kind in "fiu"


def _plain(value: Any) -> Any:
    # numpy scalars -> Python numbers, so extxyz and JSON see ordinary values
    return value.item() if isinstance(value, np.generic) else value
