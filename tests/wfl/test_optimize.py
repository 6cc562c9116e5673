"""optimize / minim.run: converged relaxations, cell relaxation, trajectories, failures."""

import numpy as np
import pytest
from _wfl_testdata import perturbed_cu_cells
from ase.calculators.calculator import Calculator, CalculatorError
from ase.calculators.emt import EMT

from wfl.configset import ConfigSet, OutputSpec
from wfl.generate.optimize import optimize
from wfl.generate_configs.minim import run as minim_run


@pytest.fixture(autouse=True)
def _no_env_pool(monkeypatch):
    monkeypatch.delenv("WFL_NUM_PYTHON_SUBPROCESSES", raising=False)


class FailsOnSecond(Calculator):
    """EMT that raises a CalculatorError for the config with info["id"] == 1."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        super().calculate(atoms, properties, system_changes)
        if atoms.info.get("id") == 1:
            raise CalculatorError("deliberate failure for id 1")
        emt = EMT()
        self.results = {p: emt.get_property(p, atoms.copy()) for p in ("energy", "forces")}


def test_relaxed_max_force_below_fmax(tmp_path):
    fmax = 0.005
    out = optimize(
        perturbed_cu_cells(3),
        OutputSpec(tmp_path / "relaxed.xyz"),
        calculator=(EMT, [], {}),
        fmax=fmax,
    )
    out = list(out)
    assert len(out) == 3
    for atoms in out:
        assert bool(atoms.info["optimize_converged"]) is True
        atoms.calc = EMT()
        assert np.abs(atoms.get_forces()).max() < fmax
        assert np.linalg.norm(atoms.arrays["optimize_forces"], axis=1).max() < fmax
        assert atoms.info["optimize_n_steps"] > 0


def test_cell_relaxation_at_zero_pressure_changes_cell():
    # EMT's Cu lattice constant is about 3.59 Å; start well away from it
    configs = perturbed_cu_cells(2, a=3.75, rattle=0.02)
    out = list(
        minim_run(
            ConfigSet(configs), OutputSpec(), calculator=(EMT, [], {}), pressure=0.0, fmax=1e-3
        )
    )
    for before, after in zip(configs, out, strict=True):
        assert not np.allclose(before.cell, after.cell, atol=1e-3)
        assert after.get_volume() < before.get_volume()
        assert np.abs(after.info["optimize_stress"]).max() < 1e-3  # eV/Å^3, ~0.16 GPa
    fixed = list(optimize(configs, OutputSpec(), calculator=EMT(), fmax=1e-2))
    assert all(np.array_equal(b.cell, a.cell) for b, a in zip(configs, fixed, strict=True))


def test_whole_trajectory_nested_and_thinned():
    configs = perturbed_cu_cells(2)
    full = list(optimize(configs, OutputSpec(), calculator=EMT(), fmax=1e-3, traj_subselect=None))
    thin = optimize(
        configs,
        OutputSpec(),
        calculator=EMT(),
        fmax=1e-3,
        traj_subselect=None,
        traj_step_interval=3,
    )
    groups = [list(g) for g in thin.groups()]
    assert len(groups) == 2
    for group in groups:
        steps = [at.info["optimize_step"] for at in group]
        n_steps = group[-1].info["optimize_n_steps"]
        assert steps[0] == 0 and steps[-1] == n_steps
        assert all(s % 3 == 0 for s in steps[:-1])
    assert len(full) > sum(len(g) for g in groups)
    assert all(at.info["_ConfigSet_loc"].count(" / ") == 2 for at in full)


def test_calculator_failure_drops_only_that_item():
    out = list(optimize(perturbed_cu_cells(3), OutputSpec(), calculator=FailsOnSecond(), fmax=0.05))
    assert [at.info["id"] for at in out] == [0, 2]
    assert [at.info["_ConfigSet_loc"] for at in out] == [" / 0", " / 2"]


def test_last_converged_counts_unconverged_as_failed():
    out = list(
        optimize(
            perturbed_cu_cells(2),
            OutputSpec(),
            calculator=EMT(),
            fmax=1e-6,
            steps=2,
            traj_subselect="last_converged",
        )
    )
    assert out == []


def test_bad_traj_subselect_and_optimizer():
    with pytest.raises(ValueError, match="traj_subselect='first'"):
        optimize(perturbed_cu_cells(1), OutputSpec(), EMT(), traj_subselect="first")
    with pytest.raises(ValueError, match="optimizer='Nope'"):
        optimize(perturbed_cu_cells(1), OutputSpec(), EMT(), optimizer="Nope")
