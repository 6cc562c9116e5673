"""Random structures from AIRSS's ``buildcell``: the first step of a random structure search.

:func:`create_input` writes a ``buildcell`` input (target volume, species, numbers of
formula units, symmetry operations, minimum separations); :func:`buildcell` runs the
``buildcell`` executable once per requested structure (autoparallelized, so many runs can
go to a process pool or a queue) and parses its output (a CASTEP ``.cell`` text) into
Atoms. AIRSS itself is not part of this package: give the path of its ``buildcell``.

Each structure gets ``info["config_type"] = "buildcell"``, ``info["buildcell_config_i"]``
(its index), the ``##EXTRA_INFO key=value`` items of the input, ``extra_info``, and (when
``spglib`` is installed) ``info["buildcell_symmetry"] = "<number> <international>
<hall> @ <symprec>"``.
"""

from __future__ import annotations

import logging
import numbers
import os
import shlex
import subprocess
import warnings
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import chemical_symbols
from ase.geometry import cellpar_to_cell
from ase.io.extxyz import key_val_str_to_dict

from wfl.autoparallelize import autoparallelize, autoparallelize_docstring
from wfl.configset import ConfigSet

logger = logging.getLogger(__name__)

__all__ = ["BuildcellError", "buildcell", "conv_buildcell_out", "create_input"]


class BuildcellError(RuntimeError):
    """``buildcell`` could not be run, printed nothing, or printed something unreadable."""


def _sig_figs(value: float, n: int) -> str:
    """``value`` rounded to ``n`` significant figures, as short text (``1.35`` -> ``"1.4"``)."""
    return f"{float(f'{value:.{n}g}'):g}"


def _as_list(value: Any, kind: type, name: str) -> list:
    if isinstance(value, kind):
        return [value]
    try:
        return list(value)
    except TypeError:
        raise ValueError(f"create_input: {name}={value!r} must be a number or a list") from None


def create_input(
    z: int | Sequence[int],
    vol_per_atom: float | Sequence[float],
    bond_lengths: float | Sequence[float],
    composition: Sequence[int] | None = None,
    RSS_min_vol_factor: float = 0.5,  # noqa: N803 - keyword name of wfl 0.3.5
    vol_range: tuple[float, float] = (0.95, 1.05),
    min_sep_factor: float = 0.9,
    symmops: str = "1-8",
    natom: tuple[int, int] = (6, 24),
    odd: str | None = None,
    verbose: bool = False,
) -> str:
    """The text of a ``buildcell`` input file for a random structure search.

    Parameters
    ----------
    z : int or list of int
        Atomic number(s) of the species.
    vol_per_atom : float or list of float
        Volume per atom of each species, Å^3; sets the target cell volume.
    bond_lengths : float or list of float
        Bond length of each species, Å; a pair's minimum separation is
        ``min_sep_factor`` times the mean of the two.
    composition : list of int, optional
        Number of atoms of each species in a formula unit (default one of each, which
        needs a single species).
    RSS_min_vol_factor : float, default 0.5
        Fraction of the mean volume per atom recorded as ``RSS_min_vol_per_atom`` (an
        ``##EXTRA_INFO`` line that :func:`buildcell` copies into every structure's info).
    vol_range : (float, float), default (0.95, 1.05)
        Target volume range, as factors of the mean volume.
    min_sep_factor : float, default 0.9
        Factor of the mean bond length giving each pair's minimum separation.
    symmops : str, default "1-8"
        Numbers of symmetry operations, e.g. ``"1-8"`` or ``"2,4"`` (crystals allow
        1, 2, 3, 4, 6, 8, 12, 16, 24, 48).
    natom : (int, int), default (6, 24)
        Range of the total number of atoms (inclusive).
    odd : None, "only" or "also", default None
        None: even numbers of atoms only; "only": odd only; "also": both.
    verbose : bool, default False
        Print the species and volumes used.

    Returns
    -------
    str
        ``#TARGVOL``, ``#SPECIES``, ``#NFORM``, ``#SYMMOPS``, ``#SLACK``, ``#OVERLAP``,
        ``#COMPACT``, ``#MINSEP`` and ``##EXTRA_INFO`` lines.

    Raises
    ------
    ValueError
        For lists of different lengths or an unknown ``odd``.
    """
    z = [int(v) for v in _as_list(z, numbers.Integral, "z")]
    vols = [float(v) for v in _as_list(vol_per_atom, numbers.Real, "vol_per_atom")]
    bonds = [float(v) for v in _as_list(bond_lengths, numbers.Real, "bond_lengths")]
    counts = [1] if composition is None else [int(n) for n in composition]
    if not len(z) == len(vols) == len(bonds) == len(counts):
        raise ValueError(
            f"create_input: z ({len(z)}), composition ({len(counts)}), vol_per_atom "
            f"({len(vols)}) and bond_lengths ({len(bonds)}) need one entry per species"
        )
    if odd not in (None, "only", "also"):
        raise ValueError(f"create_input: odd={odd!r} must be None, 'only' or 'also'")

    symbols = [chemical_symbols[n] for n in z]
    pairs = [
        f"{symbols[i]}-{symbols[j]}={_sig_figs(min_sep_factor * 0.5 * (bonds[i] + bonds[j]), 2)}"
        for i in range(len(z))
        for j in range(len(z))
        if z[i] <= z[j]
    ]
    if verbose:
        print("Z", z, "vol_per_atom", vols, "composition", counts)
    atoms_per_formula = sum(counts)
    mean_vol_per_atom = sum(v * n for v, n in zip(vols, counts, strict=True)) / atoms_per_formula
    # buildcell's TARGVOL is per formula unit of the species present
    target_volume = mean_vol_per_atom * sum(1 for n in counts if n != 0)

    def wanted(n_atoms: int) -> bool:
        if n_atoms % atoms_per_formula:
            return False
        if odd is None:
            return n_atoms % 2 == 0
        return odd == "also" or n_atoms % 2 == 1

    nform = [n // atoms_per_formula for n in range(natom[0], natom[1] + 1) if wanted(n)]
    lines = [
        f"#TARGVOL={_sig_figs(target_volume * vol_range[0], 2)}-"
        f"{_sig_figs(target_volume * vol_range[1], 2)}",
        "#SPECIES=" + ",".join(f"{s}%NUM={n}" for s, n in zip(symbols, counts, strict=True)),
        "#NFORM={" + ",".join(str(n) for n in nform) + "}",
        f"#SYMMOPS={symmops}",
        "#SLACK=0.25",
        "#OVERLAP=0.1",
        "#COMPACT",
        "#MINSEP=" + " ".join(["0.5", *pairs]),
        f"##EXTRA_INFO RSS_min_vol_per_atom={RSS_min_vol_factor * mean_vol_per_atom}",
    ]
    return "\n".join(lines) + "\n"


def conv_buildcell_out(buildcell_output: str) -> list[Atoms]:
    """Atoms of ``buildcell``'s output (CASTEP ``.cell`` text).

    Reads ``LATTICE_ABC`` (lengths in Å, angles in degrees) or ``LATTICE_CART`` (rows in
    Å) and ``POSITIONS_FRAC`` blocks; text after ``#`` on a line is a comment. One Atoms
    per positions block.

    Parameters
    ----------
    buildcell_output : str
        What ``buildcell`` printed.

    Returns
    -------
    list of Atoms

    Raises
    ------
    BuildcellError
        For a positions block without a preceding lattice block, or unreadable numbers.
    """
    structures = []
    cell = None
    block: str | None = None
    rows: list[list[str]] = []
    for raw in buildcell_output.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        upper = line.upper()
        if upper.startswith("%BLOCK"):
            block, rows = upper.split()[1], []
            continue
        if upper.startswith("%ENDBLOCK"):
            try:
                if block == "LATTICE_ABC":
                    cell = cellpar_to_cell([float(x) for row in rows[-2:] for x in row[:3]])
                elif block == "LATTICE_CART":
                    cell = np.array([[float(x) for x in row[:3]] for row in rows[-3:]])
                elif block == "POSITIONS_FRAC":
                    if cell is None:
                        raise BuildcellError("a POSITIONS_FRAC block comes before any lattice")
                    structures.append(
                        Atoms(
                            symbols=[row[0] for row in rows],
                            scaled_positions=[[float(x) for x in row[1:4]] for row in rows],
                            cell=cell,
                            pbc=True,
                        )
                    )
            except (ValueError, IndexError, KeyError) as exc:
                raise BuildcellError(f"cannot read buildcell's {block} block: {exc}") from exc
            block = None
            continue
        if block is not None:
            rows.append(line.split())
    return structures


def _command(buildcell_cmd: str | Sequence[str]) -> list[str]:
    if isinstance(buildcell_cmd, str | os.PathLike):
        text = str(buildcell_cmd)
        # a path with spaces is one word; anything else may carry arguments
        return [text] if os.path.exists(text) else shlex.split(text)
    return [str(w) for w in buildcell_cmd]


def _symmetry_label(atoms: Atoms, symprec: float) -> str | None:
    try:
        import spglib
    except ImportError:
        return None
    with warnings.catch_warnings():
        # spglib >= 2.5 warns about its own error-handling switch on every call
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            data = spglib.get_symmetry_dataset(
                (atoms.cell[:], atoms.get_scaled_positions(), atoms.numbers), symprec=symprec
            )
        except Exception as exc:  # noqa: BLE001 - a missing label must not lose the structure
            logger.warning("buildcell: no symmetry label (spglib: %s)", exc)
            return None
    if data is None:
        return None
    number = getattr(data, "number", None)
    if number is None:  # spglib < 2.5 returns a dict
        return f"{data['number']} {data['international']} {data['hall']} @ {symprec}"
    return f"{number} {data.international} {data.hall} @ {symprec}"


def _run_buildcell(
    items: list[Atoms],
    buildcell_cmd: str | Sequence[str],
    buildcell_input: str,
    extra_info: dict | None = None,
    perturbation: float = 0.0,
    skip_failures: bool = True,
    symprec: float = 0.01,
    verbose: bool = False,
    rng: list[np.random.Generator] | None = None,
) -> list[Atoms | None]:
    """Run ``buildcell`` once per item and return the structures it built.

    Parameters
    ----------
    items : list of Atoms
        Placeholders carrying ``info["buildcell_config_i"]`` (made by :func:`buildcell`).
    buildcell_cmd : str or list of str
        The ``buildcell`` executable (path, or a command line).
    buildcell_input : str
        Input text, e.g. from :func:`create_input`, given to ``buildcell`` on stdin.
    extra_info : dict, optional
        Items added to every structure's ``info`` (after the input's ``##EXTRA_INFO``).
    perturbation : float, default 0.0
        Standard deviation of a random displacement of every atom, Å (``Atoms.rattle``).
    skip_failures : bool, default True
        True: a run whose output cannot be read is logged and its structure left out.
        False: it is an error.
    symprec : float, default 0.01
        Tolerance of the space-group label, Å.
    verbose : bool, default False
        Print buildcell's input and output.
    rng : list of numpy.random.Generator, optional
        One per item, for ``perturbation`` (given by autoparallelize from the caller's
        ``rng``). None: ASE's fixed default seed, the same displacements for every run.

    Returns
    -------
    list
        One Atoms (or None for a skipped failure) per item.
    """
    command = _command(buildcell_cmd)
    info_from_input: dict = {}
    for line in buildcell_input.splitlines():
        if line.startswith("##EXTRA_INFO"):
            info_from_input.update(key_val_str_to_dict(line[len("##EXTRA_INFO") :].strip()))
    info_from_input.update(extra_info or {})
    rngs = rng if rng is not None else [None] * len(items)

    results: list[Atoms | None] = []
    for item, item_rng in zip(items, rngs, strict=True):
        if verbose:
            print("buildcell input:\n" + buildcell_input)
        try:
            run = subprocess.run(
                command, input=buildcell_input, capture_output=True, text=True, check=False
            )
        except OSError as exc:
            raise BuildcellError(
                f"cannot run buildcell command {command!r} ({exc}); install AIRSS and give "
                "the path of its buildcell executable as buildcell_cmd"
            ) from exc
        if verbose:
            print("buildcell output:\n" + run.stdout)
        if not run.stdout.strip():
            # no output at all is a broken installation or input, never a one-off failure
            raise BuildcellError(
                f"buildcell command {command!r} printed nothing (exit code {run.returncode}); "
                f"its stderr: {run.stderr.strip()[-500:]!r}; check the input and the executable"
            )
        try:
            structures = conv_buildcell_out(run.stdout)
            if len(structures) != 1:
                raise BuildcellError(f"expected one structure, got {len(structures)}")
        except BuildcellError as exc:
            if not skip_failures:
                raise BuildcellError(f"buildcell output could not be read: {exc}") from exc
            logger.warning("buildcell: output of run %s skipped: %s", item.info, exc)
            results.append(None)
            continue
        atoms = structures[0]
        atoms.info["config_type"] = "buildcell"
        atoms.info["buildcell_config_i"] = item.info["buildcell_config_i"]
        atoms.info.update(info_from_input)
        if perturbation:
            if item_rng is None:
                atoms.rattle(perturbation)
            else:
                atoms.rattle(perturbation, rng=item_rng)
        label = _symmetry_label(atoms, symprec)
        if label is not None:
            atoms.info["buildcell_symmetry"] = label
        results.append(atoms)
    return results


def _placeholders(inputs: int | Iterable[int]) -> list[Atoms]:
    """One empty Atoms per requested structure, carrying its index (the operation's items)."""
    if isinstance(inputs, ConfigSet):
        raise ValueError("buildcell inputs are structure numbers, e.g. range(20), not a ConfigSet")
    indices = range(inputs) if isinstance(inputs, numbers.Integral) else list(inputs)
    bad = [i for i in indices if not isinstance(i, numbers.Integral)]
    if bad:
        raise ValueError(
            f"buildcell inputs must be integers (structure numbers), e.g. range(20); got {bad[:3]!r}"
        )
    return [Atoms(info={"buildcell_config_i": int(i)}) for i in indices]


def buildcell(
    inputs: int | Iterable[int],
    outputs: Any,
    buildcell_cmd: str | Sequence[str],
    buildcell_input: str,
    *args: Any,
    **kwargs: Any,
) -> ConfigSet:
    if not isinstance(buildcell_input, str) or not buildcell_input.strip():
        raise ValueError(
            f"buildcell_input={buildcell_input!r} is empty; make it with create_input(...)"
        )
    return autoparallelize(
        _run_buildcell,
        _placeholders(inputs),
        outputs,
        buildcell_cmd,
        buildcell_input,
        *args,
        default_autopara_info={"num_inputs_per_python_subprocess": 1},
        **kwargs,
    )


autoparallelize_docstring(buildcell, _run_buildcell, "structure numbers (e.g. range(20))")
