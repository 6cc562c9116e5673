"""wfl.generate.supercells: the supercells' sizes, defects and slabs follow their definitions,
and random choices depend only on the caller's rng (not on chunking or the pool)."""

import warnings

import numpy as np
import pytest
from ase.build import bulk

from wfl.configset import ConfigSet, OutputSpec
from wfl.generate.supercells import (
    antisite,
    isotropic_multipliers,
    largest_bulk,
    primitive_cell,
    surface,
    vacancy,
)


def _crystals():
    crystals = [
        bulk("Cu", "fcc", a=3.6, cubic=True),
        bulk("NaCl", "rocksalt", a=5.6),
        bulk("Si", "diamond", a=5.43, orthorhombic=True),
    ]
    for i, at in enumerate(crystals):
        at.info["i"] = i
    return crystals


def test_primitive_cell_of_conventional_fcc_has_one_atom_and_same_volume_per_atom():
    conventional = bulk("Cu", "fcc", a=3.6, cubic=True)
    prim = primitive_cell(conventional)
    assert len(prim) == 1
    assert prim.get_volume() == pytest.approx(conventional.get_volume() / 4)
    assert np.allclose(prim.info["primitive_cell"], prim.cell)


@pytest.mark.parametrize("max_n_atoms", [1, 7, 40, 100])
def test_isotropic_multipliers_largest_within_the_limit_growing_the_shortest(max_n_atoms):
    at = bulk("Cu", "fcc", a=3.6, orthorhombic=True)  # 2 atoms, unequal cell vectors
    n = isotropic_multipliers(at, max_n_atoms)
    assert np.prod(n) * len(at) <= max(max_n_atoms, len(at))
    lengths = at.cell.lengths() * n
    shortest = int(np.argmin(lengths))
    grown = list(n)
    grown[shortest] += 1
    assert np.prod(grown) * len(at) > max_n_atoms  # one more copy would exceed it


def test_largest_bulk_sizes_and_info():
    crystals = _crystals()
    cells = list(largest_bulk(ConfigSet(crystals), OutputSpec(), 40))
    assert [at.info["i"] for at in cells] == [0, 1, 2]
    for crystal, at in zip(crystals, cells, strict=True):
        n_prim = len(primitive_cell(crystal))
        assert len(at) == np.prod(at.info["supercell_n"]) * n_prim <= 40
        assert at.info["config_type"] == "supercell_bulk"
        volume = np.prod(at.info["supercell_n"]) * abs(np.linalg.det(at.info["orig_cell"]))
        assert at.get_volume() == pytest.approx(volume)
    assert all(set(at.info) == {"i"} for at in crystals)  # the inputs are not changed


@pytest.mark.slow  # ASE's search goes through every integer matrix with entries -2..2
def test_largest_bulk_ase_optimal_is_a_supercell_of_the_primitive_cell():
    (cell,) = largest_bulk(ConfigSet(_crystals()[:1]), OutputSpec(), 8, ase_optimal=True)
    transform = np.asarray(cell.info["supercell_n"])
    assert transform.shape == (3, 3)
    assert len(cell) == round(abs(np.linalg.det(transform))) <= 8


def _defects(op, rng_seed, **autopara):
    kwargs = {"rng": np.random.default_rng(rng_seed)}
    if autopara:
        kwargs["autopara_info"] = autopara
    return list(op(ConfigSet(_crystals()), OutputSpec(), 40, n_vac=2, **kwargs))


def _summary(configs):
    return [(at.get_chemical_formula(), np.round(at.positions, 8).tolist()) for at in configs]


def test_vacancy_random_choices_depend_only_on_the_rng_seed():
    serial = _defects(vacancy, 3, num_inputs_per_python_subprocess=10)
    chunked = _defects(vacancy, 3, num_inputs_per_python_subprocess=1)
    pooled = _defects(vacancy, 3, num_python_subprocesses=2, num_inputs_per_python_subprocess=1)
    assert _summary(serial) == _summary(chunked) == _summary(pooled)
    others = [_summary(_defects(vacancy, seed)) for seed in (4, 5, 6)]
    assert any(o != _summary(serial) for o in others)


def test_vacancy_removes_the_recorded_atoms():
    bulk_cells = list(largest_bulk(ConfigSet(_crystals()), OutputSpec(), 40))
    for full, at in zip(bulk_cells, _defects(vacancy, 1), strict=True):
        assert len(at) == len(full) - 2
        assert at.info["config_type"] == "supercell_vacancy_2"
        assert len(at.info["vacancy_Z"]) == 2
        for z, pos in zip(at.info["vacancy_Z"], at.info["vacancy_pos"], strict=True):
            # the position was an atom of that species in the full cell, and is empty now
            in_full = np.linalg.norm(full.positions - pos, axis=1) < 1e-6
            assert full.numbers[in_full].tolist() == [z]
            assert np.min(np.linalg.norm(at.positions - pos, axis=1)) > 1.0


def test_vacancy_cluster_removes_neighbours_of_the_first_site():
    (at,) = vacancy(
        ConfigSet(_crystals()[:1]), OutputSpec(), 40, n_vac=3, cluster_r=1.1,
        rng=np.random.default_rng(2),
    )  # fmt: skip
    nearest = 3.6 / np.sqrt(2)  # fcc nearest-neighbour distance, Å
    assert at.info["config_type"] == f"supercell_vacancy_3_r_1.1_{nearest:.3f}"
    first, *others = at.info["vacancy_pos"]
    for pos in others:
        d = pos - first
        frac = np.linalg.solve(np.asarray(at.cell).T, d)
        d = np.asarray(at.cell).T @ (frac - np.round(frac))  # minimum image
        assert np.linalg.norm(d) <= 1.1 * nearest + 1e-6


def test_antisite_swaps_n_atoms_to_the_given_species():
    crystals = _crystals()
    swapped = list(
        antisite(ConfigSet(crystals), OutputSpec(), 40, n_antisite=2, Zs=[29, 47],
                 rng=np.random.default_rng(0))
    )  # fmt: skip
    full = list(largest_bulk(ConfigSet(_crystals()), OutputSpec(), 40))
    for before, at in zip(full, swapped, strict=True):
        changed = np.flatnonzero(before.numbers != at.numbers)
        assert len(changed) == 2
        assert set(at.numbers[changed]) <= {29, 47}
        assert sorted(at.info["antisite_Zs"].tolist()) == sorted(
            [[int(before.numbers[i]), int(at.numbers[i])] for i in changed]
        )
        assert at.info["config_type"] == "supercell_antisite_2"


def test_antisite_impossible_input_is_left_out_with_a_warning_not_a_failure(tmp_path):
    out = tmp_path / "anti.xyz"
    with pytest.warns(UserWarning, match="cannot make 1 antisites"):
        made = antisite(
            ConfigSet(_crystals()), OutputSpec(str(out)), 40, rng=np.random.default_rng(0)
        )
    # Cu and Si have one species and no other was offered: only NaCl gets an antisite
    assert [at.info["i"] for at in made] == [1]
    assert '"complete": false' not in OutputSpec.record_path(out).read_text()


def test_vacancy_in_too_small_a_supercell_is_left_out():
    with pytest.warns(UserWarning, match="cannot remove 2 atoms"):
        made = vacancy(ConfigSet(_crystals()[:1]), OutputSpec(), 2, n_vac=2, primitive=True)
    assert list(made) == []


@pytest.mark.parametrize("simple_cut", [True, False])
def test_surface_slab_is_thick_enough_with_vacuum_along_the_normal(simple_cut):
    slabs = list(
        surface(ConfigSet(_crystals()), OutputSpec(), 60, 6.0, 10.0, simple_cut=simple_cut,
                rng=np.random.default_rng(7))
    )  # fmt: skip
    for crystal, slab in zip(_crystals(), slabs, strict=True):
        cell = np.asarray(slab.cell)
        normal = np.cross(cell[0], cell[1])
        normal /= np.linalg.norm(normal)
        assert np.allclose(np.cross(cell[2], normal), 0, atol=1e-8)  # third vector is normal
        assert slab.info["config_type"] == "supercell_surface"
        transform = np.asarray(slab.info["transformation"])
        n_prim = len(primitive_cell(crystal))
        assert len(slab) == round(abs(np.linalg.det(transform))) * n_prim <= 60
        heights = slab.positions @ normal
        assert heights.max() - heights.min() + 10.0 < abs(cell[2] @ normal) + 1e-6


def test_surface_without_vacuum_is_a_periodic_slab():
    (slab,) = surface(ConfigSet(_crystals()[:1]), OutputSpec(), 40, 6.0, 0.0, simple_cut=True)
    assert slab.info["config_type"] == "supercell_slab"
    transform = np.asarray(slab.info["transformation"])
    # no vacuum: the slab is exactly the transformed primitive cell (1 atom), layers included
    assert len(slab) == round(abs(np.linalg.det(transform)))
    prim = primitive_cell(_crystals()[0])
    assert slab.get_volume() == pytest.approx(abs(np.linalg.det(transform)) * prim.get_volume())


def test_perturbation_is_reproducible_and_of_the_given_size():
    def perturbed(seed):
        (at,) = largest_bulk(
            ConfigSet(_crystals()[:1]), OutputSpec(), 100, pert=0.05, primitive=False,
            rng=np.random.default_rng(seed),
        )  # fmt: skip
        return at

    plain = next(iter(largest_bulk(ConfigSet(_crystals()[:1]), OutputSpec(), 100, primitive=False)))
    a, b = perturbed(1), perturbed(1)
    assert np.array_equal(a.positions, b.positions)
    shift = a.positions - plain.positions
    assert 0.03 < shift.std() < 0.07  # Å


@pytest.mark.parametrize("bad", [40.0, "40", True])
def test_bad_max_n_atoms_names_the_value(bad):
    with warnings.catch_warnings(), pytest.raises(Exception, match="max_n_atoms="):
        largest_bulk(ConfigSet(_crystals()[:1]), OutputSpec(), bad)


def test_find_voids_fcc_octahedral_and_tetrahedral_sites():
    from wfl.utils.find_voids import find_voids

    a = 3.6  # Å
    voids = find_voids(bulk("Cu", "fcc", a=a, cubic=True))
    # one of each kind (the others are symmetry copies): octahedral a/2, tetrahedral a√3/4
    assert [round(v[0], 6) for v in voids] == [round(a / 2, 6), round(a * np.sqrt(3) / 4, 6)]
    octahedral = np.array(voids[0][1:])
    frac = octahedral / a % 0.5
    assert np.allclose(np.minimum(frac, 0.5 - frac), 0, atol=1e-6)  # at a cube edge/centre


def test_interstitial_adds_one_atom_in_a_void():
    from wfl.generate.supercells import interstitial

    made = list(
        interstitial(ConfigSet(_crystals()), OutputSpec(), 40, rng=np.random.default_rng(3))
    )
    full = list(largest_bulk(ConfigSet(_crystals()), OutputSpec(), 40))
    for before, at in zip(full, made, strict=True):
        assert len(at) == len(before) + 1 and at.info["interstitial"] == len(at) - 1
        assert at.info["config_type"] == "supercell_interstitial"
        assert at.numbers[-1] in set(before.numbers)
        nearest = min(at.get_distances(len(at) - 1, list(range(len(at) - 1)), mic=True))
        assert nearest > 1.5  # Å: in a void, not on top of an atom
