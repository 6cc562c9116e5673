"""wfl.generate.atoms_and_dimers and wfl.utils.configs: isolated atoms, dimers, and
atomization energies relative to the isolated atoms of a database."""

import numpy as np
import pytest
from ase import Atoms

from wfl.configset import ConfigSet, OutputSpec
from wfl.generate.atoms_and_dimers import isolated_atom_from_e0, prepare
from wfl.utils.configs import atomization_energy, find_isolated_atoms


def test_prepare_isolated_atoms_then_each_pair_over_the_separation_range():
    configs = list(
        prepare(OutputSpec(), [8, 1], bond_lengths={1: 0.8, 8: 1.2}, dimer_n_steps=4,
                max_cutoff=6.0, extra_info={"set": "2b"})
    )  # fmt: skip
    formulas = [at.get_chemical_formula() for at in configs]
    # each pair once (z1 <= z2), in the order of atomic_numbers
    assert formulas == ["O", "H"] + ["O2"] * 4 + ["HO"] * 4 + ["H2"] * 4
    isolated, dimers = configs[:2], configs[2:]
    assert all(at.info["config_type"] == "isolated_atom" for at in isolated)
    # the box edge is the larger of 6 bond lengths and max_cutoff + 0.1 Å
    assert np.allclose(isolated[0].cell.lengths(), 6 * 1.2)
    assert np.allclose(isolated[1].cell.lengths(), 6.1)
    separations = [at.get_distance(0, 1) for at in dimers]
    for k, bond in enumerate([1.2, 1.0, 0.8]):  # O2, HO (mean of 0.8 and 1.2 Å), H2
        assert np.allclose(separations[4 * k : 4 * k + 4], np.linspace(0.65, 2.5, 4) * bond)
    assert np.allclose(dimers[-1].cell.lengths(), 6.0 * 0.8)
    assert all(not at.pbc.any() and at.info["set"] == "2b" for at in configs)


def test_prepare_fixed_cell_needs_no_cutoff():
    configs = list(prepare(OutputSpec(), [6], dimer_n_steps=2, fixed_cell=[10, 11, 12]))
    assert [at.cell.lengths().tolist() for at in configs] == [[10, 11, 12]] * 3


def test_prepare_into_a_file_refuses_to_replace_it(tmp_path):
    out = str(tmp_path / "two_body.xyz")
    prepare(OutputSpec(out), [6], dimer_n_steps=2, do_isolated_atoms=False)
    with pytest.raises(FileExistsError):
        prepare(OutputSpec(out), [6], dimer_n_steps=3, do_isolated_atoms=False)
    assert len(ConfigSet(out)) == 2  # the first run's file is intact


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bond_lengths": {1: 0.8}}, "bond_lengths has no entry for atomic numbers \\[8\\]"),
        ({"bond_lengths": {1: 0.8, 8: 1.2}}, "needs max_cutoff"),
    ],
)
def test_prepare_bad_input_names_the_fix(kwargs, message):
    out = OutputSpec()
    with pytest.raises(ValueError, match=message):
        prepare(out, [1, 8], **kwargs)
    assert out.configs == []  # nothing stored


def test_isolated_atom_from_e0_by_number_or_symbol():
    configs = list(isolated_atom_from_e0(OutputSpec(), {1: -13.6, "O": -430.0}, 8.0, "REF_energy"))
    assert [at.get_chemical_formula() for at in configs] == ["H", "O"]
    assert [at.info["REF_energy"] for at in configs] == [-13.6, -430.0]
    assert all(at.info["config_type"] == "isolated_atom" for at in configs)


def test_isolated_atom_from_e0_refuses_the_energy_key_in_extra_info():
    with pytest.raises(ValueError, match="extra_info holds the energy key 'energy'"):
        isolated_atom_from_e0(OutputSpec(), {1: -1.0}, 8.0, extra_info={"energy": 0.0})


def _database():
    h = Atoms("H", cell=[5] * 3, info={"config_type": "isolated_atom", "E": -1.0})
    o = Atoms("O", cell=[5] * 3, info={"config_type": "IsolatedAtom", "E": -5.0})
    water = Atoms("H2O", positions=np.eye(3), cell=[5] * 3, info={"config_type": "w", "E": -10.0})
    return [water, h, o]


def test_find_isolated_atoms_default_markers_and_custom_ones():
    found = find_isolated_atoms(_database(), OutputSpec())
    assert [at.get_chemical_formula() for at in found] == ["H", "O"]
    with pytest.raises(RuntimeError, match="has 3 atoms"):  # water marked as isolated
        find_isolated_atoms(_database(), OutputSpec(), isolated_atom_info_value=["w"])
    (only_h,) = find_isolated_atoms(_database(), OutputSpec(), "config_type", "isolated_atom")
    assert only_h.get_chemical_formula() == "H"


def test_find_isolated_atoms_refuses_two_for_one_element():
    db = _database()
    with pytest.raises(RuntimeError, match=r"more than once per element: \{'H': 2\}"):
        find_isolated_atoms([db[1], db[1].copy()], OutputSpec())


def test_atomization_energy_relative_to_the_isolated_atoms(tmp_path):
    db = _database()
    out = str(tmp_path / "ae.xyz")
    result = list(atomization_energy(ConfigSet(db), OutputSpec(out), "", prop="E"))
    # 2 H (-1 eV) + 1 O (-5 eV) = -7 eV separated; water at -10 eV is bound by 3 eV
    assert [at.info["atomization_E"] for at in result] == pytest.approx([3.0, 0.0, 0.0])
    assert all("atomization_E" not in at.info for at in db)  # the inputs are not changed
    again = atomization_energy(ConfigSet(db), OutputSpec(out), "", prop="E")
    assert [at.info["atomization_E"] for at in again] == pytest.approx([3.0, 0.0, 0.0])


def test_atomization_energy_element_without_isolated_atom_stores_nothing(tmp_path):
    db = _database()
    out = tmp_path / "ae.xyz"
    with pytest.raises(ValueError, match=r"has elements \['O'\] with no isolated atom"):
        atomization_energy(ConfigSet([db[0], db[1]]), OutputSpec(str(out)), "", prop="E")
    assert not out.exists()
