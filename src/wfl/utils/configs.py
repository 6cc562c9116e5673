"""Isolated atoms in a database, and atomization energies relative to them."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from ase import Atoms

from wfl.configset import ConfigSet, OutputSpec

__all__ = ["atomization_energy", "find_isolated_atoms"]

# config_type values of wfl's own isolated atoms and of other common database conventions
_DEFAULT_ISOLATED_VALUES = ("isolated_atom", "IsolatedAtom")


def _isolated_values(value: str | Iterable[str]) -> list:
    if value == "default":
        return list(_DEFAULT_ISOLATED_VALUES)
    if isinstance(value, str):
        return [value]
    return list(value)


def _isolated_atoms(
    inputs: ConfigSet | Iterable[Atoms], info_key: str, info_values: list
) -> list[Atoms]:
    if not isinstance(inputs, ConfigSet):
        inputs = ConfigSet(inputs)
    found = []
    for _loc, atoms in inputs.iter_located():  # iter_located: the callers' info untouched
        if atoms.info.get(info_key, None) in info_values:
            if len(atoms) != 1:
                raise RuntimeError(
                    f"a config with info[{info_key!r}]={atoms.info[info_key]!r} (an isolated "
                    f"atom) has {len(atoms)} atoms ({atoms.get_chemical_formula()}); an "
                    "isolated atom must be one atom: fix its info or its atoms"
                )
            found.append(atoms)
    counts = Counter(str(atoms.symbols) for atoms in found)
    repeated = {symbol: n for symbol, n in counts.items() if n > 1}
    if repeated:
        raise RuntimeError(
            f"isolated atoms found more than once per element: {repeated}; keep one isolated "
            "atom per element in the inputs"
        )
    return found


def find_isolated_atoms(
    inputs: ConfigSet | Iterable[Atoms],
    outputs: OutputSpec,
    isolated_atom_info_key: str = "config_type",
    isolated_atom_info_value: str | Iterable[str] = "default",
) -> ConfigSet:
    """Find the isolated atoms (one per element) among configurations.

    Parameters
    ----------
    inputs : ConfigSet or list of Atoms
        Configurations to search.
    outputs : OutputSpec
        Where the isolated atoms go, as one list (at ``" / 0 / 0"``, ``" / 0 / 1"``, ...).
        If its files all exist already (and ``overwrite`` is False), they are returned as
        they are, with a line on stderr.
    isolated_atom_info_key : str, default "config_type"
        ``info`` key that marks isolated atoms.
    isolated_atom_info_value : str or list of str, default "default"
        Value(s) of that key marking an isolated atom; "default" means "isolated_atom" or
        "IsolatedAtom".

    Returns
    -------
    ConfigSet
        The isolated atoms, in input order.

    Raises
    ------
    RuntimeError
        If a marked configuration has more than one atom, or an element has more than one
        isolated atom.
    """
    if outputs.reuses_finished_files("find_isolated_atoms"):
        return outputs.to_ConfigSet()
    values = _isolated_values(isolated_atom_info_value)
    outputs.store(_isolated_atoms(inputs, isolated_atom_info_key, values))
    outputs.close()
    return outputs.to_ConfigSet()


def _with_atomization_energy(
    atoms: Atoms, prop_prefix: str, prop: str, isolated_energies: dict[str, float]
) -> Atoms:
    """``atoms`` with ``info[prefix + "atomization_" + prop]``: isolated atoms' sum minus its own."""
    counts = Counter(atoms.get_chemical_symbols())  # every element checked by the caller
    energy = atoms.info[f"{prop_prefix}{prop}"]
    separated = sum(n * isolated_energies[symbol] for symbol, n in counts.items())
    atoms.info[f"{prop_prefix}atomization_{prop}"] = separated - energy
    return atoms


def atomization_energy(
    inputs: ConfigSet | Iterable[Atoms],
    outputs: OutputSpec,
    prop_prefix: str,
    prop: str = "energy",
    isolated_atom_info_key: str = "config_type",
    isolated_atom_info_value: str | Iterable[str] = "default",
) -> ConfigSet:
    """Atomization energy of every configuration, from the isolated atoms among them.

    The atomization energy is the energy of the separated atoms minus the configuration's:
    positive for a bound configuration, 0 for an isolated atom.

    Parameters
    ----------
    inputs : ConfigSet or list of Atoms
        All configurations, including one isolated atom per element present.
    outputs : OutputSpec
        Where the configurations go, each at its input's location, with
        ``info[prop_prefix + "atomization_" + prop]`` added (eV). The inputs are not changed.
        If its files all exist already (and ``overwrite`` is False), they are returned as
        they are, with a line on stderr.
    prop_prefix : str
        Prefix of the ``info`` key of the total energy, e.g. ``"REF_"`` for
        ``info["REF_energy"]`` (eV).
    prop : str, default "energy"
        Name of that key after the prefix.
    isolated_atom_info_key : str, default "config_type"
        ``info`` key that marks isolated atoms.
    isolated_atom_info_value : str or list of str, default "default"
        Value(s) marking an isolated atom; "default" means "isolated_atom" or "IsolatedAtom".

    Returns
    -------
    ConfigSet
        The configurations with their atomization energies.

    Raises
    ------
    ValueError
        If a configuration has an element without an isolated atom (before anything is
        stored).
    """
    if not isinstance(inputs, ConfigSet):
        inputs = ConfigSet(inputs)
    values = _isolated_values(isolated_atom_info_value)
    isolated = _isolated_atoms(inputs, isolated_atom_info_key, values)
    energies = {str(atoms.symbols): atoms.info[f"{prop_prefix}{prop}"] for atoms in isolated}
    # checked before the map, so a missing element stops the step before any output exists
    for loc, atoms in inputs.iter_located():
        missing = sorted(set(atoms.get_chemical_symbols()) - set(energies))
        if missing:
            raise ValueError(
                f"atomization_energy: config {atoms.get_chemical_formula()} at "
                f"{loc!r} has elements {missing} with no isolated "
                f"atom among the inputs (there are isolated atoms for {sorted(energies)}); "
                "add their isolated atoms to the inputs"
            )
    if outputs.reuses_finished_files("atomization_energy"):
        return outputs.to_ConfigSet()
    for loc, atoms in inputs.iter_located():
        result = _with_atomization_energy(atoms.copy(), prop_prefix, prop, energies)
        outputs.store(result, loc)
    outputs.close()
    return outputs.to_ConfigSet()
