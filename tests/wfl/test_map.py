"""wfl.map: any picklable per-Atoms function, in a pool or serially."""

import numpy as np
import pytest
from _wfl_testdata import perturbed_cu_cells

from wfl.configset import OutputSpec
from wfl.map import map as wfl_map


def scale_cell(atoms, factor, label="scaled"):
    atoms.set_cell(atoms.cell * factor, scale_atoms=True)
    atoms.info["label"] = label
    return atoms


def two_copies(atoms):
    return [atoms.copy(), atoms.copy()]


def none_for_odd(atoms):
    return None if atoms.info["id"] % 2 else atoms


@pytest.mark.parametrize("n", [0, 2])
def test_map_args_kwargs_in_pool_and_serial(n):
    configs = perturbed_cu_cells(4)
    out = list(
        wfl_map(
            configs,
            OutputSpec(),
            scale_cell,
            args=[1.1],
            kwargs={"label": "big"},
            autopara_info={"num_python_subprocesses": n},
        )
    )
    assert [at.info["id"] for at in out] == [0, 1, 2, 3]
    assert all(at.info["label"] == "big" for at in out)
    assert np.allclose(
        [at.get_volume() for at in out], [at.get_volume() * 1.1**3 for at in configs]
    )


def test_map_list_results_nested_and_none_dropped():
    out = wfl_map(perturbed_cu_cells(3), OutputSpec(), two_copies)
    assert [at.info["_ConfigSet_loc"] for at in out] == [
        " / 0 / 0",
        " / 0 / 1",
        " / 1 / 0",
        " / 1 / 1",
        " / 2 / 0",
        " / 2 / 1",
    ]
    kept = wfl_map(perturbed_cu_cells(4), OutputSpec(), none_for_odd)
    assert [at.info["id"] for at in kept] == [0, 2]


def test_map_not_callable_is_clear_error():
    with pytest.raises(ValueError, match="is not callable"):
        wfl_map(perturbed_cu_cells(1), OutputSpec(), "scale_cell")
