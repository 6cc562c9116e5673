"""calculators.generic.calculate: instance or tuple, properties, prefixes, failures, defaults."""

import numpy as np
import pytest
from _wfl_testdata import perturbed_cu_cells
from ase.calculators.calculator import Calculator
from ase.calculators.emt import EMT

from wfl.calculators.generic import calculate
from wfl.configset import OutputSpec
from wfl.utils.calc import construct_calculator_picklesafe


@pytest.fixture(autouse=True)
def _no_env_pool(monkeypatch):
    monkeypatch.delenv("WFL_NUM_PYTHON_SUBPROCESSES", raising=False)


class Broken(Calculator):
    implemented_properties = ["energy"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        raise RuntimeError("no licence")


class Recording(EMT):
    """EMT with a class default chunk size, as DFT calculators declare."""

    wfl_default_autopara_info = {"num_inputs_per_python_subprocess": 2}


@pytest.mark.parametrize("calculator", [EMT(), (EMT, [], {}), (EMT,)])
def test_results_equal_direct_ase(calculator, tmp_path):
    configs = perturbed_cu_cells(3)
    out = list(calculate(configs, OutputSpec(tmp_path / "c.xyz"), calculator, output_prefix="emt_"))
    for orig, got in zip(configs, out, strict=True):
        ref = orig.copy()
        ref.calc = EMT()
        assert got.info["emt_energy"] == pytest.approx(ref.get_potential_energy(), abs=1e-9)
        assert np.allclose(got.arrays["emt_forces"], ref.get_forces(), atol=1e-7)
        assert np.allclose(got.info["emt_stress"], ref.get_stress(), atol=1e-8)
        assert got.calc is None


def test_properties_selection():
    (out,) = calculate(perturbed_cu_cells(1), OutputSpec(), EMT(), properties=["energy"])
    assert "calc_energy" in out.info and "calc_stress" not in out.info


def test_failed_calculation_is_flagged_not_fatal_unless_asked():
    (out,) = calculate(perturbed_cu_cells(1), OutputSpec(), Broken())
    assert out.info["calculation_failed"] is True
    assert "no licence" in out.info["calculation_failed_message"]
    with pytest.raises(RuntimeError, match="no licence"):
        calculate(perturbed_cu_cells(1), OutputSpec(), Broken(), raise_calc_exceptions=True)


def test_calculator_class_default_chunk_size_is_used(monkeypatch):
    from wfl.calculators import generic

    seen = []
    original = generic._calculate

    def spy(atoms_list, *args, **kwargs):
        seen.append(len(atoms_list))
        return original(atoms_list, *args, **kwargs)

    monkeypatch.setattr(generic, "_calculate", spy)
    out = calculate(perturbed_cu_cells(5), OutputSpec(), Recording())
    assert seen == [2, 2, 1]
    assert len(out) == 5
    seen.clear()
    calculate(
        perturbed_cu_cells(5),
        OutputSpec(),
        (Recording, [], {}),
        autopara_info={"num_inputs_per_python_subprocess": 5},
    )
    assert seen == [5]


def test_construct_calculator_errors():
    with pytest.raises(ValueError, match="is not a \\(CalculatorClass, args, kwargs\\) tuple"):
        construct_calculator_picklesafe(("EMT", [], {}))
    with pytest.raises(ValueError, match="needs args as a list and kwargs as a dict"):
        construct_calculator_picklesafe((EMT, {}, []))
