"""wfl.fit.error: RMSE/MAE per property and category, checked on values worked out by hand."""

import numpy as np
import pytest
from ase import Atoms

from wfl.configset import ConfigSet
from wfl.fit.error import (
    calc,
    errors_dumps,
    errors_to_dataframe,
    natural_sort,
    select_units,
    value_error_scatter,
)


def _pair(config_type: str, e_ref: float, e_fit: float, f_ref, f_fit, weight=1.0) -> Atoms:
    at = Atoms("HO", positions=[[0, 0, 0], [1, 0, 0]], cell=[4, 4, 4], pbc=True)
    at.info.update(config_type=config_type, REF_energy=e_ref, fit_energy=e_fit, w=weight)
    at.arrays["REF_forces"] = np.asarray(f_ref, dtype=float)
    at.arrays["fit_forces"] = np.asarray(f_fit, dtype=float)
    return at


def _configs():
    zero = [[0, 0, 0], [0, 0, 0]]
    return [
        # energy errors per atom: +0.1 and -0.3 eV/at; force errors: |(3,4,0)| = 5 on H
        _pair("md", -1.0, -0.8, zero, [[3, 4, 0], [0, 0, 0]]),
        _pair("bulk", -2.0, -2.6, zero, zero, weight=3.0),
    ]


def test_energy_per_atom_and_force_norms_by_category():
    errors, diffs, parity = calc(_configs(), "fit_", "REF_", ["energy/atom"], ["forces"])
    assert errors["energy/atom"]["md"] == pytest.approx({"RMSE": 0.1, "MAE": 0.1, "count": 1})
    assert errors["energy/atom"]["_ALL_"]["RMSE"] == pytest.approx(np.sqrt((0.01 + 0.09) / 2))
    assert errors["energy/atom"]["_ALL_"]["MAE"] == pytest.approx(0.2)
    assert diffs["forces"]["md"] == pytest.approx([5.0, 0.0])  # norm of each atom's error
    assert errors["forces"]["_ALL_"]["count"] == 4
    assert parity["calc"]["forces"]["md"] == pytest.approx([5.0, 0.0])
    assert diffs["energy/atom"]["bulk"] == pytest.approx([-0.3])  # signed for scalars


def test_weights_components_species_and_several_category_keys():
    configs = _configs()
    errors, _, _ = calc(
        ConfigSet(configs), "fit_", "REF_", ["energy"], ["forces/comp", "forces/Z"],
        category_keys=["config_type", "w"], weight_property="w",
    )  # fmt: skip
    # weighted: (1 * 0.2^2 + 3 * 0.6^2) / 4
    assert errors["energy"]["_ALL_"]["RMSE"] == pytest.approx(np.sqrt((0.04 + 3 * 0.36) / 4))
    assert set(errors["energy"]) == {"md / 1.0", "bulk / 3.0", "_ALL_"}
    assert errors["forces/comp"]["md / 1.0"]["count"] == 6  # 2 atoms x 3 components
    assert errors["forces/comp"]["md / 1.0"]["MAE"] == pytest.approx(7 / 6)
    assert errors["forces/Z_1"]["md / 1.0"]["RMSE"] == pytest.approx(5.0)  # H only
    assert errors["forces/Z_8"]["md / 1.0"]["RMSE"] == pytest.approx(0.0)
    assert all("_ConfigSet_loc" not in at.info for at in configs)  # inputs untouched


def test_virial_from_stress_in_voigt_or_3x3_form():
    at = _configs()[0]
    at.info["REF_stress"] = np.zeros(6)
    at.info["fit_stress"] = np.diag([0.01, 0.0, 0.0])  # 3x3 against Voigt: same components
    errors, _, _ = calc([at], "fit_", "REF_", ["virial/comp"])
    # -stress * volume (64 Å^3): one component of 0.64 eV among 6
    assert errors["virial/comp"]["md"]["MAE"] == pytest.approx(0.64 / 6)


def test_misspelt_property_everywhere_is_an_error_somewhere_a_warning():
    with pytest.raises(RuntimeError, match="'energy' is missing .* from all 2 configs"):
        calc(_configs(), "fitt_", "REF_", ["energy"])
    configs = _configs()
    del configs[1].info["fit_energy"]
    with pytest.warns(UserWarning, match="missing from 1 of 2"):
        errors, _, _ = calc(configs, "fit_", "REF_", ["energy"])
    assert errors["energy"]["_ALL_"]["count"] == 1


@pytest.mark.parametrize(
    ("prop", "kwargs"), [("energy/Z", {"config_properties": ["energy/Z"]}),
                         ("forces/atom", {"atom_properties": ["forces/atom"]})],
)  # fmt: skip
def test_suffix_in_the_wrong_list_is_refused(prop, kwargs):
    with pytest.raises(ValueError, match=f"property '{prop}'"):
        calc(_configs(), "fit_", "REF_", **kwargs)


def test_table_in_error_units_with_all_last_and_counts_filled():
    errors, _, _ = calc(_configs(), "fit_", "REF_", ["energy/atom"], ["forces"])
    errors["energy/atom"]["extra10"] = {"RMSE": 1.0, "MAE": 1.0, "count": 1}
    errors["energy/atom"]["extra2"] = {"RMSE": 1.0, "MAE": 1.0, "count": 1}
    table = errors_to_dataframe(errors)
    assert list(table.index) == ["bulk", "extra2", "extra10", "md", "_ALL_"]
    assert table[("E/a", "meV/at")]["md"] == pytest.approx(100.0)
    assert table[("F", "#")]["extra2"] == 0
    text = errors_dumps(errors, error_type="MAE", precision=1)
    assert "200.0" in text and "meV/Å" in text


def test_units_and_natural_sort():
    assert select_units("forces/Z_8/comp", "error") == ("meV/Å", 1000.0)
    assert select_units("atomization_energy", "parity") == ("eV", 1.0)
    assert select_units("dipole", "error", {"dipole": {"error": ("me Å", 1e3)}}) == ("me Å", 1e3)
    with pytest.raises(KeyError, match="no units for property 'dipole'"):
        select_units("dipole", "error")
    assert natural_sort(["b10", "b2", "A1"]) == ["A1", "b2", "b10"]


def test_scatter_plot_file(tmp_path):
    errors, diffs, parity = calc(_configs(), "fit_", "REF_", ["energy/atom"], ["forces"])
    out = tmp_path / "errors.png"
    value_error_scatter(errors, diffs, parity, str(out))
    assert out.read_bytes()[:4] == b"\x89PNG"
    with pytest.raises(ValueError, match="error_type='max'"):
        value_error_scatter(errors, diffs, parity, str(out), error_type="max")
