"""Supercells of bulk crystals, and the same with point defects or cut into surface slabs.

Each operation takes unit cells and returns, per input, the largest supercell under an atom
count whose cell vectors are as close to equal in length as integer multiples allow
(optionally after reducing the input to its primitive cell with spglib), then changes it:
``vacancy`` removes atoms, ``antisite`` swaps species, ``interstitial`` adds an atom in a
void, ``surface`` cuts a slab and adds vacuum. ``info["config_type"]`` says which
(``supercell_bulk``, ``supercell_vacancy``, ``supercell_antisite``,
``supercell_interstitial``, ``supercell_surface``/``supercell_slab``), so fitting databases can
weight them. Random choices (which atoms, displacements) use the item's own generator,
spawned from the caller's ``rng``, so results do not depend on how items are split.
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import Any

import numpy as np
from ase import Atoms
from ase.build import find_optimal_cell_shape, make_supercell

from wfl.autoparallelize import autoparallelize, autoparallelize_docstring
from wfl.configset import ConfigSet

__all__ = ["antisite", "interstitial", "largest_bulk", "surface", "vacancy"]

logger = logging.getLogger(__name__)


def primitive_cell(atoms: Atoms, symprec: float = 1.0e-3) -> Atoms:
    """The primitive cell of ``atoms`` (periodic in 3D), keeping its ``info``.

    Parameters
    ----------
    atoms : Atoms
        A periodic crystal.
    symprec : float, default 1e-3
        Symmetry tolerance of spglib, Å.

    Returns
    -------
    Atoms
        The primitive cell, with ``info["primitive_cell"]`` its cell (3x3, Å); ``atoms``
        itself (unchanged) if spglib finds no symmetry cell.
    """
    try:
        import spglib
    except ImportError as exc:
        raise ImportError(
            "supercells with primitive=True need spglib: pip install spglib, or pass "
            "primitive=False to use the input cells as they are"
        ) from exc
    cell = (np.asarray(atoms.cell), atoms.get_scaled_positions(), atoms.numbers)
    with warnings.catch_warnings():
        # spglib >= 2.5 warns about its own error-handling switch on every call
        warnings.simplefilter("ignore", DeprecationWarning)
        found = spglib.standardize_cell(cell, to_primitive=True, symprec=symprec)
    if found is None:
        return atoms
    lattice, scaled, numbers = found
    prim = Atoms(numbers=numbers, cell=lattice, scaled_positions=scaled, pbc=True)
    prim.info.update(atoms.info)
    prim.info["primitive_cell"] = np.array(prim.cell)
    return prim


def isotropic_multipliers(
    atoms: Atoms, max_n_atoms: int, vary: tuple[int, ...] = (0, 1, 2)
) -> list[int]:
    """Integer multiples of the cell vectors for the largest, most nearly isotropic supercell.

    Starting from the unit cell, the currently shortest of the ``vary`` vectors is lengthened
    by one more copy for as long as the supercell stays within ``max_n_atoms``.

    Parameters
    ----------
    atoms : Atoms
        The unit cell.
    max_n_atoms : int
        Most atoms allowed in the supercell.
    vary : tuple of int, default (0, 1, 2)
        Which cell vectors may be multiplied.

    Returns
    -------
    list of int
        Multiplier of each of the three cell vectors (1 for those not varied).
    """
    lengths = np.linalg.norm(np.asarray(atoms.cell), axis=1)
    n = [1, 1, 1]
    while True:
        shortest = min(vary, key=lambda i: lengths[i] * n[i])
        n[shortest] += 1
        if math.prod(n) * len(atoms) > max_n_atoms:
            n[shortest] -= 1
            return n


def _item_rngs(rng: list | None, n: int) -> list[np.random.Generator]:
    # no caller generator: fresh unseeded ones (results are then not reproducible)
    return list(rng) if rng is not None else [np.random.default_rng() for _ in range(n)]


def _check_max_n_atoms(max_n_atoms: Any) -> None:
    if isinstance(max_n_atoms, bool) or not isinstance(max_n_atoms, int | np.integer):
        raise ValueError(f"max_n_atoms={max_n_atoms!r} must be an integer number of atoms")


def _bulk_supercell(
    atoms: Atoms, max_n_atoms: int, primitive: bool, symprec: float, ase_optimal: bool
) -> Atoms:
    if primitive:
        atoms = primitive_cell(atoms, symprec)
    atoms = atoms.copy()
    atoms.info["orig_cell"] = np.array(atoms.cell)
    if ase_optimal:
        # ASE's search for the integer transformation closest to a simple-cubic cell
        transform = find_optimal_cell_shape(atoms.cell, max(max_n_atoms // len(atoms), 1), "sc")
        supercell = make_supercell(atoms, transform)
        supercell.info.update(atoms.info)
        multipliers: Any = np.asarray(transform)
    else:
        multipliers = isotropic_multipliers(atoms, max_n_atoms)
        supercell = atoms * multipliers
    supercell.info["supercell_n"] = multipliers
    supercell.info["config_type"] = "supercell_bulk"
    supercell.calc = None  # results of the unit cell do not describe the supercell
    return supercell


def _perturb(atoms: Atoms, pert: float, rng: np.random.Generator) -> None:
    if pert != 0.0:
        atoms.positions += pert * rng.normal(size=atoms.positions.shape)


def _largest_bulk(
    atoms_list: list[Atoms],
    max_n_atoms: int,
    pert: float = 0.0,
    primitive: bool = True,
    symprec: float = 1.0e-3,
    ase_optimal: bool = False,
    rng: list[np.random.Generator] | None = None,
) -> list[Atoms]:
    """Make the largest bulk supercell of each unit cell.

    Parameters
    ----------
    atoms_list : list of Atoms
        Unit cells (periodic).
    max_n_atoms : int
        Most atoms allowed in a supercell.
    pert : float, default 0.0
        Standard deviation of a random displacement of every atom, Å.
    primitive : bool, default True
        Reduce each input to its primitive cell first (needs spglib).
    symprec : float, default 1e-3
        Symmetry tolerance for the primitive cell, Å.
    ase_optimal : bool, default False
        Use ASE's ``find_optimal_cell_shape`` (any integer transformation closest to a
        cube) instead of multiplying each cell vector.
    rng : list of numpy.random.Generator, optional
        One per item (given by autoparallelize from the caller's ``rng``), for ``pert``.

    Returns
    -------
    list of Atoms
        One supercell per input, with ``info["supercell_n"]`` (multipliers, or the 3x3
        transformation with ``ase_optimal``), ``info["orig_cell"]`` and
        ``info["config_type"] = "supercell_bulk"``.
    """
    _check_max_n_atoms(max_n_atoms)
    rngs = _item_rngs(rng, len(atoms_list))
    supercells = []
    for atoms, item_rng in zip(atoms_list, rngs, strict=True):
        supercell = _bulk_supercell(atoms, max_n_atoms, primitive, symprec, ase_optimal)
        _perturb(supercell, pert, item_rng)
        supercells.append(supercell)
    return supercells


def largest_bulk(*args: Any, **kwargs: Any) -> ConfigSet:
    return autoparallelize(
        _largest_bulk,
        *args,
        default_autopara_info={"num_inputs_per_python_subprocess": 10},
        **kwargs,
    )


autoparallelize_docstring(largest_bulk, _largest_bulk, "Atoms")


def _pick_sites(
    atoms: Atoms, n: int, cluster_r: float, rng: np.random.Generator, what: str
) -> tuple[np.ndarray, float | None] | None:
    """Indices of ``n`` atoms: random, or a random atom and ``n - 1`` of its neighbours.

    With ``cluster_r > 0`` the neighbours are the atoms within ``cluster_r`` times the
    distance of the first atom's nearest neighbour; up to 20 first atoms are tried. Returns
    (indices, that nearest-neighbour distance in Å or None), or None when no cluster is found.
    """
    if cluster_r <= 0.0:
        return rng.choice(len(atoms), size=n, replace=False), None
    for _ in range(20):
        first = int(rng.choice(len(atoms)))
        dists = atoms.get_distances(first, list(range(len(atoms))), mic=True)
        nearest = float(np.min(dists[dists > 0.0]))
        neighbours = np.flatnonzero((dists > 0.0) & (dists <= cluster_r * nearest))
        if len(neighbours) >= n - 1:
            others = rng.choice(neighbours, size=n - 1, replace=False)
            return np.concatenate(([first], others)).astype(int), nearest
    warnings.warn(
        f"{what}: no atom with {n - 1} neighbours within cluster_r={cluster_r} nearest-neighbour "
        "distances after 20 tries; this input is left out",
        stacklevel=2,
    )
    return None


def _defect_config_type(base: str, n: int, cluster_r: float, nearest: float | None) -> str:
    config_type = base if n == 1 else f"{base}_{n}"
    if nearest is not None:
        config_type += f"_r_{cluster_r}_{nearest:.3f}"
    return config_type


def _vacancy(
    atoms_list: list[Atoms],
    max_n_atoms: int,
    pert: float = 0.0,
    primitive: bool = True,
    symprec: float = 1.0e-3,
    n_vac: int = 1,
    cluster_r: float = 0.0,
    rng: list[np.random.Generator] | None = None,
) -> list:
    """Make vacancies in the largest bulk supercell of each unit cell.

    Parameters
    ----------
    atoms_list : list of Atoms
        Unit cells (periodic).
    max_n_atoms : int
        Most atoms allowed in the supercell (before removing atoms).
    pert : float, default 0.0
        Standard deviation of a random displacement of every atom, Å.
    primitive : bool, default True
        Reduce each input to its primitive cell first (needs spglib).
    symprec : float, default 1e-3
        Symmetry tolerance for the primitive cell, Å.
    n_vac : int, default 1
        Number of atoms removed from each supercell.
    cluster_r : float, default 0.0
        0: remove random atoms. > 0: remove a random atom and ``n_vac - 1`` atoms within
        ``cluster_r`` times its nearest-neighbour distance.
    rng : list of numpy.random.Generator, optional
        One per item (given by autoparallelize from the caller's ``rng``).

    Returns
    -------
    list
        Per input: the supercell with vacancies, with ``info["vacancy_Z"]``,
        ``info["vacancy_pos"]`` (Å) and ``info["config_type"]`` (``supercell_vacancy``,
        plus ``_<n_vac>`` and the cluster radius when used); or ``[]`` (left out, with a
        warning) when the supercell has too few atoms or no cluster is found.
    """
    _check_max_n_atoms(max_n_atoms)
    rngs = _item_rngs(rng, len(atoms_list))
    results: list = []
    for atoms, item_rng in zip(atoms_list, rngs, strict=True):
        supercell = _bulk_supercell(atoms, max_n_atoms, primitive, symprec, False)
        if len(supercell) <= n_vac:
            warnings.warn(
                f"vacancy: cannot remove {n_vac} atoms from a supercell of {len(supercell)} "
                f"(max_n_atoms={max_n_atoms}); this input is left out",
                stacklevel=2,
            )
            results.append([])
            continue
        picked = _pick_sites(supercell, n_vac, cluster_r, item_rng, "vacancy")
        if picked is None:
            results.append([])
            continue
        sites, nearest = picked
        supercell.info["vacancy_Z"] = supercell.numbers[sites]
        supercell.info["vacancy_pos"] = supercell.positions[sites]
        del supercell[sites]
        supercell.info["config_type"] = _defect_config_type(
            "supercell_vacancy", n_vac, cluster_r, nearest
        )
        _perturb(supercell, pert, item_rng)
        results.append(supercell)
    return results


def vacancy(*args: Any, **kwargs: Any) -> ConfigSet:
    return autoparallelize(
        _vacancy, *args, default_autopara_info={"num_inputs_per_python_subprocess": 10}, **kwargs
    )


autoparallelize_docstring(vacancy, _vacancy, "Atoms")


def _antisite(
    atoms_list: list[Atoms],
    max_n_atoms: int,
    pert: float = 0.0,
    primitive: bool = True,
    symprec: float = 1.0e-3,
    n_antisite: int = 1,
    cluster_r: float = 0.0,
    Zs: list[int] | None = None,  # noqa: N803 - keyword name of wfl 0.3.5
    rng: list[np.random.Generator] | None = None,
) -> list:
    """Swap the species of some atoms in the largest bulk supercell of each unit cell.

    Parameters
    ----------
    atoms_list : list of Atoms
        Unit cells (periodic).
    max_n_atoms : int
        Most atoms allowed in the supercell.
    pert : float, default 0.0
        Standard deviation of a random displacement of every atom, Å.
    primitive : bool, default True
        Reduce each input to its primitive cell first (needs spglib).
    symprec : float, default 1e-3
        Symmetry tolerance for the primitive cell, Å.
    n_antisite : int, default 1
        Number of atoms given another species in each supercell.
    cluster_r : float, default 0.0
        0: random atoms. > 0: a random atom and ``n_antisite - 1`` atoms within
        ``cluster_r`` times its nearest-neighbour distance.
    Zs : list of int, optional
        Atomic numbers to choose the new species from. None or empty: the species already
        in each supercell.
    rng : list of numpy.random.Generator, optional
        One per item (given by autoparallelize from the caller's ``rng``).

    Returns
    -------
    list
        Per input: the supercell with antisites, with ``info["antisite_Zs"]`` (rows of old
        and new atomic number), ``info["antisite_pos"]`` (Å) and ``info["config_type"]``
        (``supercell_antisite``, plus ``_<n_antisite>`` and the cluster radius when used);
        or ``[]`` (left out, with a warning) when the supercell has too few atoms, no other
        species is available, or no cluster is found.
    """
    _check_max_n_atoms(max_n_atoms)
    rngs = _item_rngs(rng, len(atoms_list))
    results: list = []
    for atoms, item_rng in zip(atoms_list, rngs, strict=True):
        supercell = _bulk_supercell(atoms, max_n_atoms, primitive, symprec, False)
        available = set(int(z) for z in (Zs if Zs else supercell.numbers))
        present = set(int(z) for z in supercell.numbers)
        if len(supercell) <= n_antisite or (len(present) == 1 and present == available):
            warnings.warn(
                f"antisite: cannot make {n_antisite} antisites in a supercell of "
                f"{len(supercell)} atoms of species {sorted(present)} with species "
                f"{sorted(available)} available; this input is left out",
                stacklevel=2,
            )
            results.append([])
            continue
        picked = _pick_sites(supercell, n_antisite, cluster_r, item_rng, "antisite")
        if picked is None:
            results.append([])
            continue
        sites, nearest = picked
        swaps = []
        for site in sites:
            old = int(supercell.numbers[site])
            new = int(item_rng.choice(sorted(available - {old})))
            swaps.append([old, new])
            supercell.numbers[site] = new
        supercell.info["antisite_Zs"] = np.asarray(swaps)
        supercell.info["antisite_pos"] = supercell.positions[sites]
        supercell.info["config_type"] = _defect_config_type(
            "supercell_antisite", n_antisite, cluster_r, nearest
        )
        _perturb(supercell, pert, item_rng)
        results.append(supercell)
    return results


def antisite(*args: Any, **kwargs: Any) -> ConfigSet:
    return autoparallelize(
        _antisite, *args, default_autopara_info={"num_inputs_per_python_subprocess": 10}, **kwargs
    )


autoparallelize_docstring(antisite, _antisite, "Atoms")


def _interstitial(
    atoms_list: list[Atoms],
    max_n_atoms: int,
    pert: float = 0.0,
    interstitial_probability_radius_exponent: float = 3.0,
    primitive: bool = True,
    symprec: float = 1.0e-3,
    rng: list[np.random.Generator] | None = None,
) -> list[Atoms]:
    """Add one atom in a void of the largest bulk supercell of each unit cell.

    Parameters
    ----------
    atoms_list : list of Atoms
        Unit cells (periodic).
    max_n_atoms : int
        Most atoms allowed in the supercell (before adding the interstitial).
    pert : float, default 0.0
        Standard deviation of a random displacement of every atom, Å.
    interstitial_probability_radius_exponent : float, default 3.0
        A void (one of each symmetry-distinct kind, see ``wfl.utils.find_voids``) is chosen
        with probability proportional to its radius to this power.
    primitive : bool, default True
        Reduce each input to its primitive cell first (needs spglib).
    symprec : float, default 1e-3
        Symmetry tolerance for the primitive cell, Å.
    rng : list of numpy.random.Generator, optional
        One per item (given by autoparallelize from the caller's ``rng``).

    Returns
    -------
    list of Atoms
        One supercell per input with an extra atom of a species already present (chosen at
        random), ``info["interstitial"]`` its index (the last) and
        ``info["config_type"] = "supercell_interstitial"``.
    """
    from wfl.utils.find_voids import find_voids

    _check_max_n_atoms(max_n_atoms)
    rngs = _item_rngs(rng, len(atoms_list))
    results = []
    for atoms, item_rng in zip(atoms_list, rngs, strict=True):
        supercell = _bulk_supercell(atoms, max_n_atoms, primitive, symprec, False)
        voids = np.asarray(find_voids(supercell))
        weights = voids[:, 0] ** interstitial_probability_radius_exponent
        void = voids[item_rng.choice(len(voids), p=weights / weights.sum())]
        species = int(item_rng.choice(sorted(set(supercell.numbers.tolist()))))
        supercell += Atoms(numbers=[species], positions=[void[1:4]])
        supercell.info["interstitial"] = len(supercell) - 1
        supercell.info["config_type"] = "supercell_interstitial"
        _perturb(supercell, pert, item_rng)
        results.append(supercell)
    return results


def interstitial(*args: Any, **kwargs: Any) -> ConfigSet:
    return autoparallelize(
        _interstitial,
        *args,
        default_autopara_info={"num_inputs_per_python_subprocess": 10},
        **kwargs,
    )


autoparallelize_docstring(interstitial, _interstitial, "Atoms")


def _random_surface_vectors(max_index: int, rng: np.random.Generator) -> np.ndarray:
    """Two random independent integer vectors spanning the surface, and a third out of it."""
    choices = np.arange(-max_index, max_index + 1)
    first = np.zeros(3, dtype=int)
    while not first.any():
        first = rng.choice(choices, 3)
    second = np.zeros(3, dtype=int)
    while not np.cross(first, second).any():
        second = rng.choice(choices, 3)
    normal = np.cross(first, second)
    third = next(v for v in np.eye(3, dtype=int) if np.dot(v, normal) != 0)
    return np.array([first, second, third])


def _simple_cut_vectors(atoms: Atoms) -> np.ndarray:
    """The surface spanned by the two shorter cell vectors; the longest one goes out of it."""
    out_of_plane = int(np.argmax(np.linalg.norm(np.asarray(atoms.cell), axis=1)))
    in_plane = [i for i in range(3) if i != out_of_plane]
    return np.eye(3, dtype=int)[[*in_plane, out_of_plane]]


def _surface(
    atoms_list: list[Atoms],
    max_n_atoms: int,
    min_thickness: float,
    vacuum: float,
    simple_cut: bool = False,
    max_surface_cell_indices: int = 1,
    duplicate_in_plane: bool = True,
    pert: float = 0.0,
    primitive: bool = True,
    symprec: float = 1.0e-3,
    rng: list[np.random.Generator] | None = None,
) -> list[Atoms]:
    """Cut a slab from each unit cell, thick enough, and add vacuum above it.

    Parameters
    ----------
    atoms_list : list of Atoms
        Unit cells (periodic).
    max_n_atoms : int
        Most atoms allowed in the slab (it is at least one surface cell thick).
    min_thickness : float
        The slab is repeated along the surface normal until thicker than this, Å (within
        ``max_n_atoms``).
    vacuum : float
        Thickness of vacuum added, Å. 0: no vacuum (a periodic slab, ``supercell_slab``).
    simple_cut : bool, default False
        True: the surface is spanned by the two shorter cell vectors. False: by two random
        integer combinations of cell vectors with indices up to ``max_surface_cell_indices``.
    max_surface_cell_indices : int, default 1
        Largest index of the random surface vectors.
    duplicate_in_plane : bool, default True
        Also repeat the slab in the surface plane while within ``max_n_atoms``.
    pert : float, default 0.0
        Standard deviation of a random displacement of every atom, Å.
    primitive : bool, default True
        Reduce each input to its primitive cell first (needs spglib).
    symprec : float, default 1e-3
        Symmetry tolerance for the primitive cell, Å.
    rng : list of numpy.random.Generator, optional
        One per item (given by autoparallelize from the caller's ``rng``).

    Returns
    -------
    list of Atoms
        One slab per input; its first two cell vectors span the surface (with vacuum the
        third is along the normal), ``info["transformation"]`` is the integer matrix from
        the unit cell's vectors to the slab's, and ``info["config_type"]`` is
        ``supercell_surface`` (with vacuum) or ``supercell_slab``.
    """
    _check_max_n_atoms(max_n_atoms)
    rngs = _item_rngs(rng, len(atoms_list))
    slabs = []
    for atoms, item_rng in zip(atoms_list, rngs, strict=True):
        if primitive:
            atoms = primitive_cell(atoms, symprec)
        if simple_cut:
            transform = _simple_cut_vectors(atoms)
        else:
            transform = _random_surface_vectors(max_surface_cell_indices, item_rng)
        if np.linalg.det(transform) < 0:
            transform = transform[[1, 0, 2]]  # keep the cell right-handed
        slab = make_supercell(atoms, transform)
        slab.info.update(atoms.info)

        cell = np.asarray(slab.cell)
        normal = np.cross(cell[0], cell[1])
        normal /= np.linalg.norm(normal)
        layer = abs(float(np.dot(cell[2], normal)))
        n_layers = min(math.floor(min_thickness / layer) + 1, max(max_n_atoms // len(slab), 1))
        slab = slab * [1, 1, n_layers]
        in_plane = [1, 1, 1]
        if duplicate_in_plane and len(slab) < max_n_atoms:
            in_plane = isotropic_multipliers(slab, max_n_atoms, (0, 1))
            slab = slab * in_plane
        repeat = np.array([in_plane[0], in_plane[1], n_layers])
        slab.info["transformation"] = transform * repeat[:, None]

        if vacuum > 0:
            cell = np.array(slab.cell)
            height = float(np.dot(cell[2], normal))
            cell[2] = normal * (height + math.copysign(vacuum, height))
            slab.set_cell(cell, scale_atoms=False)
            slab.wrap()
            slab.info["config_type"] = "supercell_surface"
        else:
            slab.info["config_type"] = "supercell_slab"
        _perturb(slab, pert, item_rng)
        slab.calc = None
        slabs.append(slab)
    return slabs


def surface(*args: Any, **kwargs: Any) -> ConfigSet:
    return autoparallelize(
        _surface, *args, default_autopara_info={"num_inputs_per_python_subprocess": 10}, **kwargs
    )


autoparallelize_docstring(surface, _surface, "Atoms")
