"""Empty spaces in a crystal where an extra atom could sit (interstitial sites)."""

from __future__ import annotations

import warnings

import numpy as np
from ase import Atoms
from scipy.spatial import Voronoi

__all__ = ["find_voids"]


def _periodic_distances(cell: np.ndarray, points: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Minimum-image distances (Å) between each of ``points`` and each of ``others``."""
    inverse = np.linalg.inv(cell)
    delta = (points[:, None, :] - others[None, :, :]) @ inverse
    delta -= np.round(delta)
    # the nearest image of a skewed cell may be one cell further than rounding gives
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    images = (delta[:, :, None, :] + shifts[None, None, :, :]) @ cell
    return np.min(np.linalg.norm(images, axis=-1), axis=-1)


def find_voids(
    at: Atoms, transl_symprec: float = 1.0e-1, symprec: float = 1.0e-2
) -> list[tuple[float, float, float, float]]:
    """The symmetry-distinct voids of a periodic structure, largest first.

    Candidate sites are the vertices of the Voronoi cells of the atoms (the points farthest
    from their nearest atoms); sites closer than ``transl_symprec`` to another (periodically)
    are merged, and of the sites related by a symmetry of the structure only one is kept.

    Parameters
    ----------
    at : Atoms
        Periodic structure.
    transl_symprec : float, default 0.1
        Distance below which two candidate sites are the same site, Å.
    symprec : float, default 0.01
        Symmetry tolerance of spglib, Å.

    Returns
    -------
    list of (float, float, float, float)
        ``(radius, x, y, z)`` of each void: the distance to the nearest atom and the
        Cartesian position, Å; sorted by radius, largest first.
    """
    cell = np.asarray(at.cell)
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    # the atoms and their 26 neighbouring images, so the cells of the central images are whole
    cloud = (at.positions[None, :, :] + (shifts @ cell)[:, None, :]).reshape(-1, 3)
    vertices = Voronoi(cloud).vertices
    scaled = vertices @ np.linalg.inv(cell)
    inside = np.all((scaled > -0.1) & (scaled < 1.1), axis=1)
    candidates = vertices[inside]

    sites: list[np.ndarray] = []
    for point in candidates:
        if sites and _periodic_distances(cell, point[None], np.array(sites)).min() < transl_symprec:
            continue
        sites.append(point)
    if not sites:
        return []
    sites_array = np.array(sites)
    representatives = _distinct_by_symmetry(at, sites_array, symprec)
    radii = _periodic_distances(cell, sites_array[representatives], at.positions).min(axis=1)
    voids = [
        (float(r), *map(float, sites_array[i])) for r, i in zip(radii, representatives, strict=True)
    ]
    return sorted(voids, key=lambda void: void[0], reverse=True)


def _distinct_by_symmetry(at: Atoms, sites: np.ndarray, symprec: float) -> list[int]:
    """Indices of one site of each set of sites that a symmetry of ``at`` maps onto each other."""
    import spglib

    marker = 0 if 0 not in at.numbers else int(at.numbers.max()) + 1  # a species of its own
    numbers = np.concatenate([at.numbers, np.full(len(sites), marker)])
    positions = np.concatenate([at.positions, sites]) @ np.linalg.inv(np.asarray(at.cell))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # spglib's own error-mode notice
        dataset = spglib.get_symmetry_dataset((np.asarray(at.cell), positions, numbers), symprec)
    if dataset is None:
        return list(range(len(sites)))
    classes = dataset.equivalent_atoms[len(at) :] - len(at)
    return sorted(set(int(c) for c in classes))
