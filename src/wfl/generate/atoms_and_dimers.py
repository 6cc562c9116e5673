"""Isolated atoms and dimers: the two-body part of a fitting database.

A fit learns the energy of each species alone (its reference energy, ``e0``) and of pairs of
atoms from compressed to dissociated; both are cheap single-point calculations on
configurations made here, in non-periodic boxes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols

from wfl.configset import ConfigSet, OutputSpec

__all__ = ["isolated_atom_from_e0", "prepare"]


def prepare(
    outputs: OutputSpec,
    atomic_numbers: Sequence[int],
    bond_lengths: Mapping[int, float] | None = None,
    dimer_n_steps: int = 41,
    dimer_factor_range: tuple[float, float] = (0.65, 2.5),
    dimer_box_scale: float = 6.0,
    extra_info: dict | None = None,
    do_isolated_atoms: bool = True,
    max_cutoff: float | None = None,
    fixed_cell: Any = False,
) -> ConfigSet:
    """Make an isolated atom of each species and dimers of each pair at a range of separations.

    Parameters
    ----------
    outputs : OutputSpec
        Where the configurations go (isolated atoms first, then the dimers of each pair
        ``z1 <= z2`` in the order of ``atomic_numbers``, each from short to long).
    atomic_numbers : list of int
        Species.
    bond_lengths : dict of int to float, optional
        Typical bond length of each species, Å; a pair uses the mean of its two. None: 1.0
        for every species, so ``dimer_factor_range`` is the separation range itself, Å.
    dimer_n_steps : int, default 41
        Number of separations of each pair.
    dimer_factor_range : (float, float), default (0.65, 2.5)
        Shortest and longest separation, as multiples of the pair's bond length.
    dimer_box_scale : float, default 6.0
        Edge of the cubic box of a dimer (and of an isolated atom), as a multiple of the
        bond length.
    extra_info : dict, optional
        Added to every configuration's ``info``.
    do_isolated_atoms : bool, default True
        Also make the isolated atoms (``config_type = "isolated_atom"``).
    max_cutoff : float, optional
        Largest cutoff of the model to fit, Å: an isolated atom's box is at least this
        plus 0.1 Å, which fitting codes such as gap_fit require. Needed with
        ``do_isolated_atoms`` unless ``fixed_cell`` is given.
    fixed_cell : cell, or False
        A cell (anything ``ase.cell.Cell`` accepts, e.g. ``[10, 10, 10]``) for every
        configuration instead of boxes scaled by the bond length.

    Returns
    -------
    ConfigSet
        The configurations (non-periodic; dimers along x, ``config_type = "dimer"``).
    """
    species = [int(z) for z in atomic_numbers]
    if bond_lengths is None:
        bond_lengths = dict.fromkeys(species, 1.0)
    missing = [z for z in species if z not in bond_lengths]
    if missing:
        raise ValueError(
            f"prepare: bond_lengths has no entry for atomic numbers {missing}; give one (Å) "
            "for every species, or bond_lengths=None for 1.0 each"
        )
    has_fixed_cell = fixed_cell is not False and fixed_cell is not None
    if do_isolated_atoms and max_cutoff is None and not has_fixed_cell:
        raise ValueError(
            "prepare: do_isolated_atoms=True needs max_cutoff (the model's largest cutoff, Å) "
            "so the isolated atoms' boxes are large enough; or give fixed_cell, or "
            "do_isolated_atoms=False"
        )
    extra = dict(extra_info or {})

    def box(bond_length: float, min_edge: float = 0.0) -> Any:
        return fixed_cell if has_fixed_cell else [max(min_edge, bond_length * dimer_box_scale)] * 3

    if do_isolated_atoms:
        min_edge = 0.0 if max_cutoff is None else max_cutoff + 0.1
        for z in species:
            atom = Atoms(numbers=[z], cell=box(bond_lengths[z], min_edge), pbc=False)
            atom.info["config_type"] = "isolated_atom"
            atom.info.update(extra)
            outputs.store(atom)

    for z1 in species:
        for z2 in species:
            if z1 > z2:
                continue  # each pair once
            bond_length = 0.5 * (bond_lengths[z1] + bond_lengths[z2])
            low, high = dimer_factor_range
            for separation in np.linspace(low * bond_length, high * bond_length, dimer_n_steps):
                dimer = Atoms(
                    numbers=[z1, z2],
                    positions=[[0.0, 0.0, 0.0], [separation, 0.0, 0.0]],
                    cell=box(bond_length),
                    pbc=False,
                )
                dimer.info["config_type"] = "dimer"
                dimer.info.update(extra)
                outputs.store(dimer)
    outputs.close()
    return outputs.to_ConfigSet()


def isolated_atom_from_e0(
    outputs: OutputSpec,
    e0_dict: Mapping[int | str, float],
    cell_size: float,
    energy_key: str = "energy",
    extra_info: dict | None = None,
) -> ConfigSet:
    """Make isolated atoms carrying given reference energies (no calculation needed).

    Parameters
    ----------
    outputs : OutputSpec
        Where the atoms go, in the order of ``e0_dict``.
    e0_dict : dict
        Species (atomic number or symbol) -> energy of the isolated atom, eV.
    cell_size : float
        Edge of each atom's cubic (non-periodic) box, Å; larger than the model's cutoff.
    energy_key : str, default "energy"
        ``info`` key the energy is stored under.
    extra_info : dict, optional
        Added to every atom's ``info``; must not hold ``energy_key``.

    Returns
    -------
    ConfigSet
        The atoms (``config_type = "isolated_atom"``).
    """
    extra = dict(extra_info or {})
    if energy_key in extra:
        raise ValueError(
            f"isolated_atom_from_e0: extra_info holds the energy key {energy_key!r}, which "
            f"would replace the energies of e0_dict; remove it from extra_info={extra!r}"
        )
    for species, energy in e0_dict.items():
        symbol = chemical_symbols[species] if isinstance(species, int) else species
        atom = Atoms(symbol, cell=[cell_size] * 3, pbc=False)
        atom.info[energy_key] = energy
        atom.info["config_type"] = "isolated_atom"
        atom.info.update(extra)
        outputs.store(atom)
    outputs.close()
    return outputs.to_ConfigSet()
