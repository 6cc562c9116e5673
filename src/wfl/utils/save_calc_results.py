"""Keep a calculator's results on the Atoms: wfl 0.3.5's ``save_calc_results`` and
``at_copy_save_calc_results``, which operations written for it call.

With a ``prefix`` the results go into ``info`` (per configuration) and ``arrays`` (per atom)
as ``prefix + name`` and the calculator is detached, so they survive pickling and extxyz
files; with ``prefix=None`` they are frozen in a ``SinglePointCalculator``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ase import Atoms
from ase.calculators.calculator import (
    PropertyNotImplementedError,
    PropertyNotPresent,
    all_properties,
)
from ase.calculators.singlepoint import SinglePointCalculator
from ase.outputs import ArrayProperty, all_outputs

__all__ = [
    "at_copy_save_calc_results",
    "per_atom_properties",
    "per_config_properties",
    "save_calc_results",
]

# ASE's properties that a SinglePointCalculator accepts, split by their shape in ASE's
# output table: per atom (first dimension natoms) or per configuration.
per_atom_properties = [
    name
    for name, out in all_outputs.items()
    if name in all_properties and isinstance(out, ArrayProperty) and out.shapespec[0] == "natoms"
]
per_config_properties = [
    name for name in all_outputs if name in all_properties and name not in per_atom_properties
]

# Set by a calculator that saved its results itself; the next save only clears the flag.
_ALREADY_SAVED = "__calculator_results_saved"


def save_calc_results(
    atoms: Atoms, *, prefix: str | None, properties: Iterable[str] | None
) -> None:
    """Move ``atoms.calc``'s results onto ``atoms`` (in place).

    Parameters
    ----------
    atoms : Atoms
        With a calculator that has computed ``properties``.
    prefix : str or None
        ``info``/``arrays`` key prefix (e.g. ``"REF_"``; earlier values under it are
        replaced, and ``info[prefix + "converged"]`` is set if the calculator says), or
        None to keep them in a ``SinglePointCalculator``.
    properties : iterable of str or None
        Names to keep; None keeps every result the calculator has.

    Raises
    ------
    ValueError
        For ``prefix=""`` (the keys would collide with what extxyz reads back as a
        calculator's results), or ``prefix=None`` with the calculator's extra results.
    ase.calculators.calculator.PropertyNotPresent
        For a property the calculator did not compute.
    """
    if atoms.info.pop(_ALREADY_SAVED, False):
        return
    if prefix == "":
        raise ValueError(
            "save_calc_results: prefix='' would store results under bare names that extxyz "
            "reads back as a calculator's; give a prefix such as 'calc_', or None to keep "
            "them in a SinglePointCalculator"
        )
    calc = atoms.calc
    names = list(calc.results) if properties is None else list(properties)
    per_config, per_atom = {}, {}
    for name in names:
        if name not in calc.results:
            raise PropertyNotPresent(
                f"save_calc_results: {name!r} is not among the calculated properties "
                f"{sorted(calc.results)}"
            )
        if name == "energy":
            try:  # the force-consistent energy, where the calculator has one
                per_config[name] = atoms.get_potential_energy(force_consistent=True)
            except PropertyNotImplementedError:
                per_config[name] = atoms.get_potential_energy()
        elif name in per_atom_properties:
            per_atom[name] = calc.results[name]
        elif name in per_config_properties:
            per_config[name] = calc.results[name]
    if prefix is not None and hasattr(calc, "converged"):
        per_config["converged"] = calc.converged
    extra = getattr(calc, "extra_results", None) or {}
    if prefix is None and (extra.get("config") or extra.get("atoms")):
        raise ValueError(
            "save_calc_results: this calculator has extra results, which only an info/arrays "
            "prefix can hold; give a prefix instead of None"
        )
    per_config.update(extra.get("config", {}))
    per_atom.update(extra.get("atoms", {}))
    if "relaxed_positions" in extra:
        atoms.set_positions(extra["relaxed_positions"])
    if prefix is None:
        kept = {k: v for k, v in {**per_config, **per_atom}.items() if k in all_properties}
        atoms.calc = SinglePointCalculator(atoms, **kept)
        return
    for name in per_config_properties:
        atoms.info.pop(prefix + name, None)
    for name in per_atom_properties:
        atoms.arrays.pop(prefix + name, None)
    atoms.calc = None
    for name, value in per_config.items():
        atoms.info[prefix + name] = value
    for name, value in per_atom.items():
        atoms.new_array(prefix + name, value)


def at_copy_save_calc_results(
    at: Atoms, prefix: str | None, properties: Iterable[str] | None = None
) -> Atoms:
    """A copy of ``at`` with its calculator's results saved (see :func:`save_calc_results`).

    A prefix like ``"md__REF_"`` first removes every other ``info``/``arrays`` key starting
    with its part up to ``"__"`` (``"md__"``), so results of an earlier step under the
    same family of prefixes do not linger. ``at`` itself is not changed.
    """
    copied = at.copy()
    copied.calc = at.calc
    if prefix is not None and "__" in prefix:
        family = re.sub(r"__.*", "__", prefix)
        for key in [k for k in copied.info if k.startswith(family)]:
            del copied.info[key]
        for key in [k for k in copied.arrays if k.startswith(family)]:
            del copied.arrays[key]
    save_calc_results(copied, prefix=prefix, properties=properties)
    return copied
