"""md: trajectories, per-item random generators, NVE and NVT."""

import numpy as np
import pytest
from _wfl_testdata import perturbed_cu_cells
from ase.calculators.emt import EMT

from wfl.configset import OutputSpec
from wfl.generate.md import md


@pytest.fixture(autouse=True)
def _no_env_pool(monkeypatch):
    monkeypatch.delenv("WFL_NUM_PYTHON_SUBPROCESSES", raising=False)


def _run(configs, rng, **kw):
    return list(
        md(
            configs,
            OutputSpec(),
            calculator=(EMT, [], {}),
            steps=4,
            dt=2.0,
            temperature=300.0,
            rng=rng,
            **kw,
        )
    )


def test_same_seed_same_trajectory_different_seed_different():
    configs = perturbed_cu_cells(2)
    a = _run(configs, np.random.default_rng(1))
    b = _run(configs, np.random.default_rng(1))
    c = _run(configs, np.random.default_rng(2))
    assert len(a) == 2 * 5
    assert all(np.array_equal(x.positions, y.positions) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[-1].positions, c[-1].positions)
    assert [x.info["md_time"] for x in a[:5]] == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_item_generator_independent_of_other_items():
    # item 0's trajectory is the same whether or not other items run with it
    configs = perturbed_cu_cells(3)
    alone = _run(configs[:1], np.random.default_rng(5))
    together = _run(configs, np.random.default_rng(5))
    assert all(
        np.array_equal(x.positions, y.positions) for x, y in zip(alone, together[:5], strict=True)
    )


def test_nve_conserves_energy_and_last_only():
    configs = perturbed_cu_cells(1, rattle=0.1)
    out = list(md(configs, OutputSpec(), calculator=EMT(), steps=20, dt=1.0, traj_subselect="last"))
    assert len(out) == 1 and out[0].info["md_step"] == 20
    traj = list(md(configs, OutputSpec(), calculator=EMT(), steps=20, dt=1.0))
    total = [at.info["md_energy"] + at.get_kinetic_energy() for at in traj]
    assert max(total) - min(total) < 1e-2  # eV; started at rest, so no rng needed
