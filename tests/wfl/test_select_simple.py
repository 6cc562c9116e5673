"""wfl.select.simple: selections keep their inputs' locations and are operations like any other
(completion record, skip-if-done, stale outputs refused, same result in a pool)."""

import json

import ase.io
import numpy as np
import pytest
from ase import Atoms

from wfl.configset import ConfigSet, OutputSpec
from wfl.select.simple import by_bool_func, by_index


def _configs(n: int) -> list[Atoms]:
    configs = []
    for i in range(n):
        at = Atoms("H", positions=[[0.1 * i, 0, 0]], cell=[3] * 3, pbc=True)
        at.info["i"] = i
        configs.append(at)
    return configs


def _i_and_loc(configs) -> list:
    return [(int(at.info["i"]), at.info["_ConfigSet_loc"]) for at in configs]


def multiple_of_three(atoms):
    return atoms.info["i"] % 3 == 0


def test_by_bool_func_keeps_selected_configs_at_their_locations():
    inputs = [_configs(4), _configs(7)[4:]]
    selected = by_bool_func(ConfigSet(inputs), OutputSpec(), multiple_of_three)
    assert _i_and_loc(selected) == [(0, " / 0 / 0"), (3, " / 0 / 3"), (6, " / 1 / 2")]
    assert all("_ConfigSet_loc" not in at.info for group in inputs for at in group)


def test_by_bool_func_same_in_a_pool_as_serially():
    serial = by_bool_func(_configs(20), OutputSpec(), multiple_of_three)
    pooled = by_bool_func(
        _configs(20), OutputSpec(), multiple_of_three,
        autopara_info={"num_python_subprocesses": 2, "num_inputs_per_python_subprocess": 3},
    )  # fmt: skip
    assert _i_and_loc(serial) == _i_and_loc(pooled)
    assert len(_i_and_loc(serial)) == 7


def test_by_bool_func_lambda_runs_here_even_with_a_pool_configured(monkeypatch):
    # a lambda cannot be pickled into pool workers: the selection runs in this process
    monkeypatch.setenv("WFL_NUM_PYTHON_SUBPROCESSES", "2")
    selected = by_bool_func(_configs(5), OutputSpec(), at_filter=lambda at: at.info["i"] > 2)
    assert [i for i, _ in _i_and_loc(selected)] == [3, 4]


def test_unselected_configs_are_not_failures(tmp_path):
    out = tmp_path / "sel.xyz"
    by_bool_func(_configs(6), OutputSpec(str(out)), multiple_of_three)
    record = json.loads(OutputSpec.record_path(out).read_text())
    assert record.get("complete") is not False and record["n_configs"] == 2


def test_by_bool_func_rerun_skips_and_another_filter_is_refused(tmp_path, capsys):
    out = str(tmp_path / "sel.xyz")
    by_bool_func(_configs(6), OutputSpec(out), multiple_of_three)
    again = by_bool_func(_configs(6), OutputSpec(out), multiple_of_three)
    assert "already complete" in capsys.readouterr().err
    assert [i for i, _ in _i_and_loc(again)] == [0, 3]
    with pytest.raises(ValueError, match="different arguments"):
        by_bool_func(_configs(6), OutputSpec(out), _is_first)


def _is_first(atoms):
    return atoms.info["i"] == 0


def test_by_bool_func_rejects_a_filter_that_is_not_callable():
    with pytest.raises(Exception, match="at_filter=3 is not callable"):
        by_bool_func(_configs(2), OutputSpec(), 3)


def test_by_index_positions_in_iteration_order_of_nested_inputs():
    inputs = ConfigSet([_configs(3), _configs(5)[3:]])
    assert _i_and_loc(by_index(inputs, OutputSpec(), [4, 0])) == [(0, " / 0 / 0"), (4, " / 1 / 1")]


def test_by_index_ignores_positions_outside_the_inputs():
    selected = by_index(_configs(3), OutputSpec(), [-1, 3, 99, np.int64(1)])
    assert _i_and_loc(selected) == [(1, " / 1")]
    assert list(by_index(_configs(3), OutputSpec(), [])) == []


def test_by_index_repeated_index_gives_copies_under_its_location():
    selected = by_index(_configs(3), OutputSpec(), [2, 0, 2])
    assert _i_and_loc(selected) == [(0, " / 0"), (2, " / 2 / 0"), (2, " / 2 / 1")]


@pytest.mark.parametrize("bad", [1.0, "2", True, None])
def test_by_index_bad_index_names_the_value(bad):
    with pytest.raises(ValueError, match=f"indices holds {bad!r}"):
        by_index(_configs(3), OutputSpec(), [0, bad])


def test_by_index_files_one_output_file_per_input_file(tmp_path):
    ase.io.write(tmp_path / "a.xyz", _configs(2))
    ase.io.write(tmp_path / "b.xyz", _configs(4)[2:])
    inputs = ConfigSet(["a.xyz", "b.xyz"], file_root=tmp_path)
    outputs = OutputSpec(["sa.xyz", "sb.xyz"], file_root=tmp_path)
    by_index(inputs, outputs, [1, 3])
    assert [at.info["i"] for at in ase.io.read(tmp_path / "sa.xyz", ":")] == [1]
    assert [at.info["i"] for at in ase.io.read(tmp_path / "sb.xyz", ":")] == [3]


def test_by_index_rerun_skips_and_other_indices_are_refused(tmp_path, capsys):
    out = str(tmp_path / "sel.xyz")
    by_index(_configs(4), OutputSpec(out), [1, 2])
    again = by_index(_configs(4), OutputSpec(out), [2, 1])  # the same selection
    assert "already complete" in capsys.readouterr().err
    assert [at.info["i"] for at in again] == [1, 2]
    with pytest.raises(ValueError, match="different arguments"):
        by_index(_configs(4), OutputSpec(out), [3])
    assert [at.info["i"] for at in ConfigSet(out)] == [1, 2]  # nothing lost
