"""The error table of a fitted potential: its predictions against reference values, by category.

:func:`calc` compares properties stored under two prefixes in each configuration (e.g.
``REF_energy`` from DFT and ``mace_energy`` from the fit) and returns RMSE and MAE for every
property and category (``config_type`` by default, plus ``_ALL_``);
:func:`errors_to_dataframe`/:func:`errors_dumps` make the table, and
:func:`value_error_scatter` the parity and error plots.

Property names may carry suffixes: ``/atom`` (per-configuration values divided by the number
of atoms), ``/comp`` (each vector or tensor component is its own sample, instead of the norm
of the difference vector) and ``/Z`` (per-atom values split by atomic number, reported as
``<name>/Z_<Z>``). ``virial`` is made from ``stress`` as ``-stress * volume`` (eV).
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.stress import full_3x3_to_voigt_6_stress

__all__ = [
    "calc",
    "errors_dumps",
    "errors_to_dataframe",
    "natural_sort",
    "select_units",
    "value_error_scatter",
]

ALL = "_ALL_"
DEFAULT_CONFIG_PROPERTIES = ("energy/atom", "virial/atom/comp")
DEFAULT_ATOM_PROPERTIES = ("forces",)

# property -> plot type -> (unit label, factor from ASE units)
DEFAULT_UNITS: dict[str, dict[str, tuple[str, float]]] = {
    "energy": {"parity": ("eV", 1.0), "error": ("meV", 1.0e3)},
    "energy/atom": {"parity": ("eV/at", 1.0), "error": ("meV/at", 1.0e3)},
    "forces": {"parity": ("eV/Å", 1.0), "error": ("meV/Å", 1.0e3)},
    "virial": {"parity": ("eV", 1.0), "error": ("meV", 1.0e3)},
    "virial/atom": {"parity": ("eV/at", 1.0), "error": ("meV/at", 1.0e3)},
    "stress": {"parity": ("GPa", 1.0), "error": ("MPa", 1.0e3)},
}


class _Property:
    """One requested property name, parsed: the stored key and what its suffixes ask for."""

    def __init__(self, name: str, per_config: bool) -> None:
        self.name = name
        self.per_config = per_config
        self.per_atom = bool(re.search(r"/atom\b", name))
        self.per_component = bool(re.search(r"/comp\b", name))
        self.by_species = bool(re.search(r"/Z\b", name))
        key = re.sub(r"/(atom|comp|Z)\b", "", name)
        self.from_stress = key == "virial"
        self.key = "stress" if self.from_stress else key
        if per_config and self.by_species:
            raise ValueError(f"property {name!r}: /Z is only possible in atom_properties")
        if not per_config and self.per_atom:
            raise ValueError(f"property {name!r}: /atom is only possible in config_properties")

    def values(self, atoms: Atoms, prefix: str) -> np.ndarray | None:
        """The stored value as a 2D array (rows: 1 per configuration, or one per atom)."""
        store = atoms.info if self.per_config else atoms.arrays
        value = store.get(prefix + self.key)
        if value is None:
            return None
        value = np.array(value, dtype=float)  # a copy: the configuration is not changed
        if self.from_stress:
            value *= -atoms.get_volume()
        value = self._voigt(value)
        value = value.reshape((1, -1)) if self.per_config else value.reshape((len(atoms), -1))
        if self.per_atom:
            value /= len(atoms)
        return value

    def _voigt(self, value: np.ndarray) -> np.ndarray:
        """Stress-like tensors as 6 Voigt components, so 3x3 and Voigt forms compare."""
        base = self.name.split("/")[0]
        if base in ("stress", "virial") and value.shape != (6,):
            if value.shape not in ((9,), (3, 3)):
                raise ValueError(f"property {self.name!r} has shape {value.shape}, not 6, 9 or 3x3")
            return full_3x3_to_voigt_6_stress(value.reshape(3, 3))
        if base in ("stresses", "virials") and value.shape[1:] != (6,):
            if value.shape[1:] not in ((9,), (3, 3)):
                raise ValueError(f"property {self.name!r} has shape {value.shape}")
            return np.array([full_3x3_to_voigt_6_stress(v.reshape(3, 3)) for v in value])
        return value


def _configs(inputs: Any) -> Iterable[Atoms]:
    # a ConfigSet's iteration would mark the caller's Atoms with their locations
    iter_located = getattr(inputs, "iter_located", None)
    if iter_located is not None:
        return (atoms for _loc, atoms in iter_located())
    return inputs


def calc(
    inputs: Iterable[Atoms],
    calc_property_prefix: str,
    ref_property_prefix: str,
    config_properties: Sequence[str] | None = None,
    atom_properties: Sequence[str] | None = None,
    category_keys: str | Sequence[str] | None = "config_type",
    weight_property: str | None = None,
) -> tuple[dict, dict, dict]:
    """Errors of calculated properties against reference ones, per property and category.

    Parameters
    ----------
    inputs : ConfigSet or iterable of Atoms
        Configurations holding both values in ``info`` (per configuration) or ``arrays``
        (per atom).
    calc_property_prefix : str
        Prefix of the calculated values' keys (e.g. ``"mace_"`` for ``info["mace_energy"]``).
    ref_property_prefix : str
        Prefix of the reference values' keys (e.g. ``"REF_"``).
    config_properties : list of str, optional
        ``info`` properties, with optional ``/atom`` and ``/comp`` suffixes.
    atom_properties : list of str, optional
        ``arrays`` properties, with optional ``/comp`` and ``/Z`` suffixes. If neither list
        is given: ``["energy/atom", "virial/atom/comp"]`` and ``["forces"]``.
    category_keys : str or list of str, default "config_type"
        ``info`` keys whose values (joined by ``" / "``) name a configuration's category;
        every configuration also counts in ``"_ALL_"``.
    weight_property : str, optional
        ``info`` key of a configuration's weight in RMSE and MAE (default weight 1).

    Returns
    -------
    errors : dict
        ``errors[property][category] = {"RMSE": float, "MAE": float, "count": int}`` in ASE
        units (eV, eV/Å, ...); count is the number of samples (configurations, atoms or
        components).
    diffs : dict
        ``diffs[property][category]``: list of differences calculated - reference (signed
        for scalars and components, the norm of the difference for vectors).
    parity : dict
        ``parity["ref"|"calc"][property][category]``: the values (norms for vectors).

    Raises
    ------
    RuntimeError
        If a property is missing from every configuration (a misspelt name or prefix);
        missing from only some, it is a warning.
    """
    if not config_properties and not atom_properties:
        config_properties, atom_properties = DEFAULT_CONFIG_PROPERTIES, DEFAULT_ATOM_PROPERTIES
    properties = [_Property(p, True) for p in config_properties or ()]
    properties += [_Property(p, False) for p in atom_properties or ()]
    if isinstance(category_keys, str) or category_keys is None:
        category_keys = [category_keys]

    diffs: dict = {}
    weights: dict = {}
    parity: dict = {"ref": {}, "calc": {}}
    missing: dict[str, int] = {}
    n_configs = 0
    for atoms in _configs(inputs):
        n_configs += 1
        category = " / ".join(str(atoms.info.get(k)) for k in category_keys)
        categories = [category] if category == ALL else [category, ALL]
        weight = atoms.info.get(weight_property, 1.0) if weight_property else 1.0
        for prop in properties:
            ref = prop.values(atoms, ref_property_prefix)
            calculated = prop.values(atoms, calc_property_prefix)
            if ref is None or calculated is None:
                missing[prop.name] = missing.get(prop.name, 0) + 1
                continue
            for label, rows in _groups(prop, atoms, len(ref)):
                ref_part, calc_part = ref[rows], calculated[rows]
                if prop.per_component:
                    ref_part, calc_part = ref_part.reshape(-1, 1), calc_part.reshape(-1, 1)
                diff = calc_part - ref_part
                if diff.shape[1] > 1:  # vectors: the length of the difference
                    diff = np.linalg.norm(diff, axis=1)
                    ref_part = np.linalg.norm(ref_part, axis=1)
                    calc_part = np.linalg.norm(calc_part, axis=1)
                samples = (diff.ravel(), ref_part.ravel(), calc_part.ravel())
                for cat in categories:
                    _extend(diffs, prop.name + label, cat, samples[0])
                    _extend(weights, prop.name + label, cat, np.full(len(samples[0]), weight))
                    _extend(parity["ref"], prop.name + label, cat, samples[1])
                    _extend(parity["calc"], prop.name + label, cat, samples[2])

    for name, count in missing.items():
        if count == n_configs:
            raise RuntimeError(
                f"property {name!r} is missing (as {ref_property_prefix!r} reference or "
                f"{calc_property_prefix!r} calculated value) from all {n_configs} configs; "
                "check the property name and the prefixes"
            )
        warnings.warn(
            f"property {name!r} is missing from {count} of {n_configs} configs", stacklevel=2
        )

    errors: dict = {}
    for name, by_category in diffs.items():
        errors[name] = {}
        for cat, values in by_category.items():
            d, w = np.asarray(values), np.asarray(weights[name][cat])
            errors[name][cat] = {
                "RMSE": float(np.sqrt(np.sum(w * d**2) / np.sum(w))),
                "MAE": float(np.sum(w * np.abs(d)) / np.sum(w)),
                "count": len(d),
            }
    return errors, diffs, parity


def _groups(prop: _Property, atoms: Atoms, n_rows: int) -> list[tuple[str, np.ndarray]]:
    """(label suffix, row mask) of each group of rows reported separately."""
    if prop.per_config or not prop.by_species:
        return [("", np.ones(n_rows, dtype=bool))]
    return [(f"_{z}", atoms.numbers == z) for z in sorted(set(atoms.numbers.tolist()))]


def _extend(table: dict, name: str, category: str, values: np.ndarray) -> None:
    table.setdefault(name, {}).setdefault(category, []).extend(values.tolist())


def select_units(prop: str, plt_type: str, units_dict: dict | None = None) -> tuple[str, float]:
    """Unit label and factor from ASE units for a property's parity values or errors.

    Parameters
    ----------
    prop : str
        Property name as in :func:`calc` (``/comp`` and ``/Z_<Z>`` are ignored, and
        ``atomization_energy`` counts as ``energy``).
    plt_type : "parity" or "error"
        Values (e.g. eV) or errors (e.g. meV).
    units_dict : dict, optional
        Units of other properties, or replacements, e.g.
        ``{"energy": {"parity": ("eV", 1.0), "error": ("meV", 1.0e3)}}``.

    Returns
    -------
    (str, float)
        The label, and the factor to multiply values in ASE units by.
    """
    units = {**DEFAULT_UNITS, **(units_dict or {})}
    key = re.sub(r"/comp\b", "", prop)
    if "forces" in key:
        key = re.sub(r"/Z_\d+\b", "", key)
    if "energy" in key:
        key = key.replace("atomization_energy", "energy")
    if key not in units or plt_type not in units[key]:
        raise KeyError(
            f"no units for property {prop!r} and plot type {plt_type!r}; known: "
            f"{sorted(units)} with 'parity'/'error'; give them in units_dict"
        )
    return units[key][plt_type]


def natural_sort(l: Iterable[str]) -> list[str]:  # noqa: E741 - parameter name of wfl 0.3.5
    """Sorted with digit runs compared as numbers, letters case-blind: ``a2`` before ``a10``."""

    def key(text: str) -> list:
        return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", text)]

    return sorted(l, key=key)


def _short_header(prop: str) -> str:
    for long, short in (
        (r"^energy\b", "E"), (r"^forces\b", "F"), (r"^virial\b", "V"),
        (r"/atom\b", "/a"), (r"/comp\b", "/c"),
    ):  # fmt: skip
        prop = re.sub(long, short, prop)
    return prop


def errors_to_dataframe(errors: dict, error_type: str = "RMSE", units_dict: dict | None = None):
    """The error table as a pandas DataFrame: a row per category, two columns per property.

    Parameters
    ----------
    errors : dict
        The first result of :func:`calc`.
    error_type : "RMSE" or "MAE", default "RMSE"
        Which error to show.
    units_dict : dict, optional
        As in :func:`select_units`.

    Returns
    -------
    pandas.DataFrame
        Columns ``(property, unit)`` (the error, in the error unit, e.g. meV) and
        ``(property, "#")`` (the sample count, 0 where a category lacks the property);
        rows in natural order with ``_ALL_`` last. Needs pandas.
    """
    try:
        import pandas as pd
    except ImportError as exc:
        raise ImportError("errors_to_dataframe needs pandas: pip install pandas") from exc
    _check_error_type(error_type)
    columns: dict = {}
    categories: list[str] = []
    for prop, by_category in errors.items():
        label, factor = select_units(prop, "error", units_dict)
        header = _short_header(prop)
        columns[(header, label)] = {c: e[error_type] * factor for c, e in by_category.items()}
        columns[(header, "#")] = {c: int(e["count"]) for c, e in by_category.items()}
        categories += [c for c in by_category if c not in categories]
    for (_header, kind), column in columns.items():
        if kind == "#":
            for cat in categories:
                column.setdefault(cat, 0)
    rows = natural_sort([c for c in categories if c != ALL]) + ([ALL] if ALL in categories else [])
    return pd.DataFrame.from_dict(columns).reindex(rows)


def errors_dumps(errors: dict, error_type: str = "RMSE", precision: int = 2) -> str:
    """The error table as text (see :func:`errors_to_dataframe`), ``precision`` decimals."""
    table = errors_to_dataframe(errors, error_type=error_type)
    return table.to_string(
        max_rows=None, max_cols=None, float_format=f"{{:.{int(precision)}f}}".format, sparsify=False
    )


def _check_error_type(error_type: str) -> None:
    if error_type not in ("RMSE", "MAE"):
        raise ValueError(f"error_type={error_type!r} must be 'RMSE' or 'MAE'")


def value_error_scatter(
    all_errors: dict,
    all_diffs: dict,
    all_parity: dict,
    output: str,
    properties: Sequence[str] | None = None,
    ref_property_prefix: str = "reference ",
    calc_property_prefix: str = "calculated ",
    error_type: str = "RMSE",
    plot_parity: bool = True,
    plot_error: bool = True,
    cmap: str | None = None,
    units_dict: dict | None = None,
) -> None:
    """Parity plots (calculated against reference) and errors against reference values.

    One column per property, one colour per category, the category's error in the legend.

    Parameters
    ----------
    all_errors, all_diffs, all_parity : dict
        The three results of :func:`calc`.
    output : str
        Image file to write (format from its extension).
    properties : list of str, optional
        Properties to plot (default all).
    ref_property_prefix, calc_property_prefix : str
        Axis label prefixes.
    error_type : "RMSE" or "MAE", default "RMSE"
        Error shown in the legend.
    plot_parity, plot_error : bool, default True
        Which rows to draw.
    cmap : str, optional
        Matplotlib colormap name (default: tab10, or hsv for more than 10 categories).
    units_dict : dict, optional
        As in :func:`select_units`.
    """
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    _check_error_type(error_type)
    properties = list(all_errors) if properties is None else list(properties)
    kinds = [k for k, wanted in (("parity", plot_parity), ("error", plot_error)) if wanted]
    if not kinds or not properties:
        raise ValueError("value_error_scatter: nothing to plot (no properties, or both plots off)")
    side = 4.5  # inches per panel
    fig = Figure(figsize=(side * len(properties), side * len(kinds)))
    grid = fig.add_gridspec(len(kinds), len(properties), wspace=0.25, hspace=0.25)
    n_categories = len(all_errors[properties[0]])
    colours = colormaps[cmap or ("tab10" if n_categories <= 10 else "hsv")]
    for col, prop in enumerate(properties):
        axes: dict = {}
        for row, kind in enumerate(kinds):
            axes[kind] = fig.add_subplot(grid[row, col], sharex=axes.get("parity"))
        error_label, error_factor = select_units(prop, "error", units_dict)
        value_label = select_units(prop, "parity", units_dict)[0]
        for i, category in enumerate(all_diffs[prop]):
            if category == ALL:
                continue
            colour = colours(i / max(n_categories - 1, 1) if cmap or n_categories > 10 else i)
            error = all_errors[prop][category][error_type] * error_factor
            ref = all_parity["ref"][prop][category]
            if "parity" in axes:
                axes["parity"].scatter(
                    ref, all_parity["calc"][prop][category], edgecolors=colour,
                    facecolors="none", label=f"{category}: {error:.2f} {error_label}",
                )  # fmt: skip
            if "error" in axes:
                diffs = np.abs(np.asarray(all_diffs[prop][category])) * error_factor
                axes["error"].scatter(ref, diffs, edgecolors=colour, facecolors="none")
        if "parity" in axes:
            ax = axes["parity"]
            if n_categories <= 10:
                ax.legend(title=f"{error_type} per category")
            ax.set_title(prop)
            ax.set_xlabel(f"{ref_property_prefix}{prop}, {value_label}")
            ax.set_ylabel(f"{calc_property_prefix}{prop}, {value_label}")
            low = min(ax.get_xlim()[0], ax.get_ylim()[0]) - 0.1
            high = max(ax.get_xlim()[1], ax.get_ylim()[1]) + 0.1
            ax.set_xlim(low, high)
            ax.set_ylim(low, high)
            ax.plot([low, high], [low, high], c="k", linewidth=0.8)
            ax.grid(color="lightgrey", ls=":")
        if "error" in axes:
            ax = axes["error"]
            ax.set_title(f"{prop} error")
            ax.set_xlabel(f"{ref_property_prefix}{prop}, {value_label}")
            ax.set_ylabel(f"{calc_property_prefix}{prop} error, {error_label}")
            ax.set_yscale("log")
            ax.grid(color="lightgrey", ls=":")
    fig.savefig(output, dpi=150, bbox_inches="tight")
