"""ConfigSet: every kind of input, locations, groups, and clear errors for bad input."""

import ase.io
import numpy as np
import pytest
from _wfl_testdata import perturbed_cu_cells

from wfl.configset import ConfigSet, OutputSpec


def _locs(cs):
    return [at.info["_ConfigSet_loc"] for at in cs]


def _ids(cs):
    return [at.info["id"] for at in cs]


def test_list_of_atoms_locations_and_len():
    configs = perturbed_cu_cells(3)
    cs = ConfigSet(configs)
    assert _locs(cs) == [" / 0", " / 1", " / 2"]
    assert _ids(cs) == [0, 1, 2]
    assert len(cs) == 3


def test_single_atoms_is_one_config():
    (atoms,) = perturbed_cu_cells(1)
    assert _locs(ConfigSet(atoms)) == [" / 0"]


def test_nested_lists_locations_and_groups():
    c = perturbed_cu_cells(5)
    cs = ConfigSet([[c[0], c[1]], [c[2]], [c[3], c[4]]])
    assert _locs(cs) == [" / 0 / 0", " / 0 / 1", " / 1 / 0", " / 2 / 0", " / 2 / 1"]
    groups = list(cs.groups())
    assert [_ids(g) for g in groups] == [[0, 1], [2], [3, 4]]
    # locations inside a group are relative to it
    assert _locs(groups[2]) == [" / 0", " / 1"]


def test_single_file_flat_locations(tmp_path):
    ase.io.write(tmp_path / "in.xyz", perturbed_cu_cells(3))
    cs = ConfigSet(tmp_path / "in.xyz")
    assert _locs(cs) == [" / 0", " / 1", " / 2"]
    assert _ids(cs) == [0, 1, 2]
    # top-level configs come out of groups() one by one, without a location (as in wfl 0.3.5)
    groups = list(cs.groups())
    assert [g.info.get("_ConfigSet_loc") for g in groups] == [None, None, None]
    assert [g.info["id"] for g in groups] == [0, 1, 2]


def test_glob_and_list_of_files_are_one_group_per_file(tmp_path):
    c = perturbed_cu_cells(5)
    ase.io.write(tmp_path / "a.xyz", c[:2])
    ase.io.write(tmp_path / "b.xyz", c[2:])
    by_glob = ConfigSet("*.xyz", file_root=tmp_path)
    by_list = ConfigSet([tmp_path / "a.xyz", tmp_path / "b.xyz"])
    expected = [" / 0 / 0", " / 0 / 1", " / 1 / 0", " / 1 / 1", " / 1 / 2"]
    assert _locs(by_glob) == expected
    assert _locs(by_list) == expected
    assert [_ids(g) for g in by_glob.groups()] == [[0, 1], [2, 3, 4]]


def test_read_kwargs_are_used(tmp_path):
    ase.io.write(tmp_path / "in.xyz", perturbed_cu_cells(4))
    cs = ConfigSet(tmp_path / "in.xyz", read_kwargs={"index": "::2"})
    assert _ids(cs) == [0, 2]


def test_configsets_as_groups(tmp_path):
    c = perturbed_cu_cells(4)
    ase.io.write(tmp_path / "f.xyz", c[2:3])
    ase.io.write(tmp_path / "g.xyz", c[3:])
    in_memory = ConfigSet([ConfigSet(c[:2]), ConfigSet(c[2:])])
    assert _locs(in_memory) == [" / 0 / 0", " / 0 / 1", " / 1 / 0", " / 1 / 1"]
    # ConfigSets of files join into one list of files
    files = ConfigSet([ConfigSet(tmp_path / "f.xyz"), ConfigSet(tmp_path / "g.xyz")])
    assert _locs(files) == [" / 0 / 0", " / 1 / 0"]
    assert _ids(files) == [2, 3]


@pytest.mark.parametrize("order", ["files_first", "memory_first"])
def test_configsets_of_files_and_of_atoms_do_not_mix(tmp_path, order):
    c = perturbed_cu_cells(3)
    ase.io.write(tmp_path / "f.xyz", c[2:])
    sets = [ConfigSet(c[:2]), ConfigSet(tmp_path / "f.xyz")]
    if order == "files_first":
        sets.reverse()
    with pytest.raises(ValueError, match="build separate ConfigSets"):
        ConfigSet(sets)


def test_iter_located_does_not_touch_callers_atoms():
    configs = perturbed_cu_cells(2)
    pairs = list(ConfigSet(configs).iter_located())
    assert [loc for loc, _ in pairs] == [" / 0", " / 1"]
    assert all("_ConfigSet_loc" not in at.info for at in configs)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: ConfigSet(str(p / "nothing*.xyz")), "matches no file"),
        (lambda p: ConfigSet(p / "missing.xyz"), "does not exist"),
        (lambda p: ConfigSet(str(p / "x.xyz"), file_root=p), "absolute path"),
        (lambda p: ConfigSet(OutputSpec()), "OutputSpec"),
        (lambda p: ConfigSet(3.5), "cannot take"),
    ],
)
def test_bad_input_is_a_clear_value_error(tmp_path, make, match):
    with pytest.raises(ValueError, match=match):
        make(tmp_path)


def test_positions_survive_file_round_trip(tmp_path):
    configs = perturbed_cu_cells(2)
    ase.io.write(tmp_path / "in.xyz", configs)
    for orig, read in zip(configs, ConfigSet(tmp_path / "in.xyz"), strict=True):
        assert np.allclose(orig.positions, read.positions, atol=1e-8)


def test_groups_of_a_file_mixing_depths_are_all_configsets(tmp_path):
    # a file whose stored locations mix a top-level config with nested ones (written out
    # of order by hand or by an interrupted run): every group must iterate to Atoms,
    # never to a bare Atoms whose iteration gives Atom objects
    configs = perturbed_cu_cells(4)
    locs = [" / 1 / 0", " / 0", " / 1 / 1", " / 2"]
    for i, (at, loc) in enumerate(zip(configs, locs, strict=True)):
        at.info["_ConfigSet_loc"] = loc
        at.info["i"] = i
    ase.io.write(tmp_path / "mixed.xyz", configs)
    groups = list(ConfigSet(str(tmp_path / "mixed.xyz")).groups())
    assert all(isinstance(g, ConfigSet) for g in groups)
    assert [[at.info["i"] for at in g] for g in groups] == [[0], [1], [2], [3]]
    # a one-config group reads like a list of one
    assert [at.info["_ConfigSet_loc"] for at in groups[1]] == [" / 0"]
    # a flat file still yields its configs themselves, as for a list of Atoms
    ase.io.write(tmp_path / "flat.xyz", perturbed_cu_cells(2))
    flat = list(ConfigSet(str(tmp_path / "flat.xyz")).groups())
    assert [type(g).__name__ for g in flat] == ["Atoms", "Atoms"]
