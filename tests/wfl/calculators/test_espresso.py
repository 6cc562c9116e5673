"""wfl.calculators.espresso.Espresso with the real pw.x (Debian quantum-espresso).

Each pw.x run is a 2-atom Si cell (or an H2 molecule) at a low cutoff: well under a second.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.espresso import Espresso as ASEEspresso
from ase.calculators.espresso import EspressoProfile

from wfl.calculators.espresso import Espresso, default_pseudo_dir
from wfl.calculators.utils import (
    FAILED_INFO_KEY,
    FAILED_MESSAGE_INFO_KEY,
    RUNDIR_INFO_KEY,
    CalculationFailed,
)

pytestmark = pytest.mark.skipif(
    shutil.which("pw.x") is None or not (Path(default_pseudo_dir()) / "Si.pz-vbc.UPF").exists(),
    reason="needs pw.x and Si.pz-vbc.UPF (bash ci/install-fitters.sh)",
)

SI_KWARGS = {
    "pseudopotentials": {"Si": "Si.pz-vbc.UPF"},
    "input_data": {"system": {"ecutwfc": 12.0}},
    "kspacing": 0.3,
}


def si_cell(rattle_seed=None):
    at = bulk("Si", "diamond", a=5.43)
    if rattle_seed is not None:
        at.rattle(stdev=0.05, seed=rattle_seed)
    return at


def test_energy_forces_stress_match_plain_ase(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    at = si_cell(rattle_seed=1)
    at.calc = Espresso(workdir=tmp_path / "wfl", **SI_KWARGS)
    e = at.get_potential_energy()
    f = at.get_forces()
    s = at.get_stress()

    ref = si_cell(rattle_seed=1)
    ref.calc = ASEEspresso(
        profile=EspressoProfile(command="pw.x", pseudo_dir=default_pseudo_dir()),
        directory=tmp_path / "plain",
        pseudopotentials=SI_KWARGS["pseudopotentials"],
        kspacing=SI_KWARGS["kspacing"],
        input_data={"control": {"tprnfor": True, "tstress": True}, "system": {"ecutwfc": 12.0}},
    )
    assert e == pytest.approx(ref.get_potential_energy(), abs=1e-6)
    assert np.allclose(f, ref.get_forces(), atol=1e-5)
    assert np.allclose(s, ref.get_stress(), atol=1e-6)
    assert np.abs(f).max() > 1e-3  # rattled: forces are real numbers, not zeros
    assert FAILED_INFO_KEY not in at.info


def test_one_run_gives_energy_forces_and_stress(tmp_path):
    at = si_cell()
    calc = Espresso(workdir=tmp_path, keep_files=True, **SI_KWARGS)
    at.calc = calc
    at.get_potential_energy()
    at.get_forces()
    at.get_stress()
    # energy, forces and stress came from a single pw.x run
    assert len(list(tmp_path.glob("run_QE_*"))) == 1


def test_kspacing_sets_the_grid(tmp_path):
    at = si_cell()
    at.calc = Espresso(workdir=tmp_path, keep_files="default", **SI_KWARGS)
    at.get_potential_energy()
    (rundir,) = tmp_path.glob("run_QE_*")
    pwi = (rundir / "espresso.pwi").read_text()
    assert "K_POINTS automatic" in pwi
    # |b| = sqrt(3)/a*... for the fcc primitive cell: 0.3190 1/Å -> int(0.319/0.3) + 1 = 2
    assert "\n2 2 2  0 0 0" in pwi


def test_keep_files_modes(tmp_path):
    at = si_cell()
    at.calc = Espresso(workdir=tmp_path / "none", **SI_KWARGS)
    at.get_potential_energy()
    assert list((tmp_path / "none").iterdir()) == []

    at = si_cell()
    at.calc = Espresso(workdir=tmp_path / "default", keep_files="default", **SI_KWARGS)
    at.get_potential_energy()
    (rundir,) = (tmp_path / "default").iterdir()
    assert sorted(p.name for p in rundir.iterdir()) == [
        "espresso.err",
        "espresso.pwi",
        "espresso.pwo",
    ]

    at = si_cell()
    at.calc = Espresso(
        workdir=tmp_path / "kept",
        scratch_dir=tmp_path / "scratch",
        keep_files=["*.pwo"],
        **SI_KWARGS,
    )
    at.get_potential_energy()
    (rundir,) = (tmp_path / "kept").iterdir()
    assert [p.name for p in rundir.iterdir()] == ["espresso.pwo"]
    assert list((tmp_path / "scratch").iterdir()) == []


def test_failure_is_flagged_and_rundir_kept(tmp_path):
    at = si_cell()
    at.calc = Espresso(
        workdir=tmp_path,
        pseudopotentials={"Si": "Si.pz-vbc.UPF"},
        input_data={"system": {"ecutwfc": -5.0}},  # pw.x rejects this
    )
    with pytest.raises(CalculationFailed, match="ecutwfc out of range"):
        at.get_potential_energy()
    assert at.info[FAILED_INFO_KEY] is True
    assert "ecutwfc" in at.info[FAILED_MESSAGE_INFO_KEY]
    rundir = Path(at.info[RUNDIR_INFO_KEY])
    assert (rundir / "espresso.pwo").exists()  # kept although keep_files=False

    # the same Atoms computed successfully afterwards loses the stale flags
    at.calc = Espresso(workdir=tmp_path, **SI_KWARGS)
    at.get_potential_energy()
    assert FAILED_INFO_KEY not in at.info and RUNDIR_INFO_KEY not in at.info


def test_missing_pseudopotential_is_a_clear_error(tmp_path):
    at = si_cell()
    at.calc = Espresso(workdir=tmp_path, pseudopotentials={}, input_data={"ecutwfc": 12})
    with pytest.raises(CalculationFailed, match=r"no pseudopotential given for element\(s\) Si"):
        at.get_potential_energy()
    assert "Si.pz-vbc.UPF" in at.info[FAILED_MESSAGE_INFO_KEY]  # names the candidates


def test_nonperiodic_molecule_uses_gamma_and_no_stress(tmp_path):
    from ase import Atoms

    h2 = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.75]], pbc=False)
    h2.center(vacuum=3.0)
    h2.calc = Espresso(
        workdir=tmp_path,
        keep_files="default",
        pseudopotentials={"H": "H.pz-vbc.UPF"},
        input_data={"system": {"ecutwfc": 15.0}},
        kspacing=0.2,  # ignored for a molecule: Γ only
    )
    e = h2.get_potential_energy()
    assert np.isfinite(e) and e < 0
    assert "stress" not in h2.calc.results
    (rundir,) = tmp_path.glob("run_QE_*")
    assert "K_POINTS gamma" in (rundir / "espresso.pwi").read_text()

    boxless = Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.75]], pbc=False)
    boxless.calc = Espresso(workdir=tmp_path, pseudopotentials={"H": "H.pz-vbc.UPF"})
    with pytest.raises(CalculationFailed, match=r"atoms.center\(vacuum=5.0\)"):
        boxless.get_potential_energy()


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="keep_files='some'"):
        Espresso(keep_files="some")
    with pytest.raises(ValueError, match="kspacing=-0.1"):
        Espresso(kspacing=-0.1)


def test_generic_calculate_matches_direct_ase_and_flags_failures(tmp_path, monkeypatch):
    """Through generic.calculate as a (Class, args, kwargs) tuple built in 2 pool workers."""
    from wfl.calculators.generic import calculate
    from wfl.configset import ConfigSet, OutputSpec

    monkeypatch.chdir(tmp_path)
    configs = [si_cell(rattle_seed=i) for i in range(3)]
    bad = si_cell(rattle_seed=9)
    bad.set_chemical_symbols(["Si", "C"])  # no C pseudopotential: this one must fail alone
    configs.insert(1, bad)

    out = calculate(
        ConfigSet(configs),
        OutputSpec("calc.xyz"),
        calculator=(Espresso, [], dict(SI_KWARGS, workdir=str(tmp_path / "runs"))),
        output_prefix="QE_",
        autopara_info={"num_python_subprocesses": 2},
    )
    results = list(out)
    assert len(results) == 4
    assert results[1].info["calculation_failed"] is True
    assert (
        "no pseudopotential given for element(s) C" in results[1].info["calculation_failed_message"]
    )
    assert "QE_energy" not in results[1].info

    good = [results[0], results[2], results[3]]
    for i, at in enumerate(good):
        direct = si_cell(rattle_seed=i)
        direct.calc = Espresso(workdir=tmp_path / "direct", **SI_KWARGS)
        assert at.info["QE_energy"] == pytest.approx(direct.get_potential_energy(), abs=1e-6)
        assert np.allclose(at.arrays["QE_forces"], direct.get_forces(), atol=1e-5)
        assert "calculation_failed" not in at.info
    # successful runs leave no directories behind; the failed one is kept
    kept = list((tmp_path / "runs").iterdir())
    assert len(kept) == 1 and str(kept[0]) == results[1].info["calculation_failed_rundir"]


def _local_queue_root(tmp_path, monkeypatch):
    root = tmp_path / "_expyre"
    root.mkdir()
    monkeypatch.setenv("EXPYRE_ROOT", str(root))
    monkeypatch.delenv("WFL_EXPYRE_INFO", raising=False)
    return root


def _queued_calculate_matches_direct(tmp_path, remote_info):
    from wfl.calculators.generic import calculate
    from wfl.configset import ConfigSet, OutputSpec

    configs = [si_cell(rattle_seed=i) for i in range(2)]
    out = calculate(
        ConfigSet(configs),
        OutputSpec(str(tmp_path / "queued.xyz")),
        calculator=(Espresso, [], SI_KWARGS),
        output_prefix="QE_",
        autopara_info={"remote_info": remote_info},
    )
    results = list(out)
    assert len(results) == 2
    for i, at in enumerate(results):
        direct = si_cell(rattle_seed=i)
        direct.calc = Espresso(workdir=tmp_path / "direct", **SI_KWARGS)
        assert at.info["QE_energy"] == pytest.approx(direct.get_potential_energy(), abs=1e-6)
        assert np.allclose(at.arrays["QE_forces"], direct.get_forces(), atol=1e-5)


def test_generic_calculate_as_queued_jobs_on_local_queue(tmp_path, monkeypatch):
    root = _local_queue_root(tmp_path, monkeypatch)
    _queued_calculate_matches_direct(
        tmp_path,
        {
            "sys_name": "local",
            "job_name": "qe_calc",
            "resources": {"num_cores": 1, "max_time": "10m"},
            "partial_node": True,
            "num_inputs_per_queued_job": 1,
            "env_vars": ["OMP_NUM_THREADS=1"],
            "timeout": 600,
        },
    )
    assert len(list((root / "stage").iterdir())) == 2  # one job per configuration


def _test_config():
    """config.json of the test systems: EXPYRE_PYTEST_CONFIG_DIR, else $HOME/.expyre."""
    import os

    custom = os.environ.get("EXPYRE_PYTEST_CONFIG_DIR")
    if custom:
        return Path(custom) / "config.json" if Path(custom).is_dir() else Path(custom)
    return Path(os.environ.get("HOME") or "~").expanduser() / ".expyre" / "config.json"


def _remote_systems():
    import json
    import os
    import re

    cfg = _test_config()
    if not cfg.is_file():
        return []
    names = [n for n in json.loads(cfg.read_text()).get("systems", {}) if n != "local"]
    pattern = os.environ.get("EXPYRE_PYTEST_SYSTEMS")
    return [n for n in names if not pattern or re.search(pattern, n)]


@pytest.mark.remote
@pytest.mark.parametrize("sys_name", _remote_systems() or [None])
def test_generic_calculate_as_queued_jobs_on_remote_system(tmp_path, monkeypatch, sys_name):
    if sys_name is None:
        pytest.skip("no test system matches EXPYRE_PYTEST_SYSTEMS in the test config.json")
    root = _local_queue_root(tmp_path, monkeypatch)
    shutil.copy(_test_config(), root / "config.json")
    _queued_calculate_matches_direct(
        tmp_path,
        {
            "sys_name": sys_name,
            "job_name": "qe_calc_remote",
            "resources": {"num_cores": 1, "max_time": "10m"},
            "partial_node": True,
            "num_inputs_per_queued_job": 2,
            "env_vars": ["OMP_NUM_THREADS=1"],
            "timeout": 1800,
        },
    )
