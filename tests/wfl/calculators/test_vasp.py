"""wfl.calculators.vasp.Vasp -- FILE-LEVEL tests only: no VASP binary exists here.

A FAKE VASP (a shell script written by these tests) copies the INCAR/KPOINTS/POSCAR/POTCAR
it is given into a capture directory and exits with an error, so we check exactly what wfl
writes for VASP, and that a failed run is flagged. The POTCARs are FAKE text files, labelled
as such, laid out as users do, ``POTCARs/<symbol>/POTCAR``.
"""

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from ase import Atoms
from ase.build import bulk

from wfl.calculators.utils import FAILED_INFO_KEY, RUNDIR_INFO_KEY, CalculationFailed
from wfl.calculators.vasp import Vasp, read_vasp_kwargs_env, vasp_kspacing_grid

# the documented workflow's vasp_kwargs
SEED_VASP_KWARGS = {
    "encut": 400.0,
    "ismear": 0,
    "sigma": 0.1,
    "ediff": 1.0e-7,
    "kspacing": 0.15,
    "kgamma": True,
}

FAKE_VASP = """#!/bin/sh
# FAKE VASP for tests: records its inputs, then fails (no real VASP exists on this machine)
d=$(mktemp -d "{capture}/run.XXXXXX")
for f in INCAR KPOINTS POSCAR POTCAR; do [ -f "$f" ] && cp "$f" "$d/"; done
basename "$0" > "$d/command"
echo "fake vasp: not a real VASP" >&2
exit 1
"""


def make_fake_potcars(root: Path, symbols) -> Path:
    for sym in symbols:
        (root / "POTCARs" / sym).mkdir(parents=True, exist_ok=True)
        (root / "POTCARs" / sym / "POTCAR").write_text(
            f"FAKE POTCAR for {sym} -- test data, not a VASP pseudopotential\n"
        )
    return root / "POTCARs"


def make_fake_vasp(root: Path, name: str) -> Path:
    capture = root / "captured"
    capture.mkdir(exist_ok=True)
    script = root / name
    script.write_text(FAKE_VASP.format(capture=capture))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def captured_runs(root: Path) -> list[Path]:
    return sorted((root / "captured").glob("run.*"))


@pytest.fixture
def fake_vasp_env(tmp_path, monkeypatch):
    """cwd = tmp_path with FAKE POTCARs, VASP_COMMAND(_GAMMA) = FAKE VASP scripts."""
    monkeypatch.chdir(tmp_path)
    make_fake_potcars(tmp_path, ["Si", "C", "H"])
    monkeypatch.setenv("VASP_PP_PATH", "POTCARs")
    monkeypatch.setenv("VASP_COMMAND", str(make_fake_vasp(tmp_path, "fake_vasp_std")))
    monkeypatch.setenv("VASP_COMMAND_GAMMA", str(make_fake_vasp(tmp_path, "fake_vasp_gam")))
    monkeypatch.delenv("WFL_VASP_KWARGS", raising=False)
    monkeypatch.delenv("ASE_VASP_COMMAND", raising=False)
    return tmp_path


def run_and_capture(atoms, calc, root):
    """Run the FAKE VASP once and return the directory holding the inputs it received."""
    before = set(captured_runs(root))
    atoms.calc = calc
    with pytest.raises(CalculationFailed):
        atoms.get_potential_energy()
    (new,) = set(captured_runs(root)) - before
    return new


def incar(run: Path) -> dict:
    out = {}
    for line in (run / "INCAR").read_text().splitlines():
        if "=" in line:
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def test_seed_kwargs_with_wfl_vasp_kwargs_env(fake_vasp_env, monkeypatch):
    # as a queued job's shell leaves it after expanding ${EXPYRE_NCORES_PER_NODE}
    monkeypatch.setenv("WFL_VASP_KWARGS", '{ "ncore": 16}')
    at = bulk("Si", "diamond", a=5.43)
    run = run_and_capture(at, Vasp(**SEED_VASP_KWARGS), fake_vasp_env)
    tags = incar(run)
    assert tags["ENCUT"] == "400.000000"
    assert tags["KSPACING"] == "0.150000"
    assert tags["KGAMMA"] == ".TRUE."
    assert tags["ISMEAR"] == "0"
    assert float(tags["EDIFF"]) == pytest.approx(1e-7)
    assert tags["NCORE"] == "16"
    assert not (run / "KPOINTS").exists()  # KSPACING: VASP makes the grid itself
    assert (run / "POTCAR").read_text().startswith("FAKE POTCAR for Si")
    assert (run / "command").read_text().strip() == "fake_vasp_std"  # 0.15 -> many k-points


def test_explicit_kwargs_override_env_and_env_file(fake_vasp_env, monkeypatch):
    kw_file = fake_vasp_env / "vasp_kwargs.json"
    kw_file.write_text(json.dumps({"ncore": 4, "encut": 300.0, "prec": "Accurate"}))
    monkeypatch.setenv("WFL_VASP_KWARGS", str(kw_file))
    at = bulk("Si", "diamond", a=5.43)
    run = run_and_capture(at, Vasp(encut=520.0, kpts=(2, 2, 2)), fake_vasp_env)
    tags = incar(run)
    assert tags["ENCUT"] == "520.000000" and tags["NCORE"] == "4" and tags["PREC"] == "Accurate"
    assert (run / "KPOINTS").read_text().splitlines()[3].split() == ["2", "2", "2"]


def test_two_elements_potcar_in_poscar_order(fake_vasp_env):
    at = bulk("SiC", "zincblende", a=4.36)
    run = run_and_capture(at, Vasp(encut=300.0, kpts=(2, 2, 2)), fake_vasp_env)
    potcar = (run / "POTCAR").read_text().splitlines()
    poscar_symbols = (run / "POSCAR").read_text().splitlines()[5].split()
    assert [line.split()[3] for line in potcar] == poscar_symbols
    assert set(poscar_symbols) == {"Si", "C"}


def test_gamma_binary_for_molecule_and_single_kpoint(fake_vasp_env):
    mol = Atoms("CH", positions=[[0, 0, 0], [0, 0, 1.1]], pbc=False)
    mol.center(vacuum=4.0)
    run = run_and_capture(mol, Vasp(encut=300.0, kspacing=0.15), fake_vasp_env)
    assert (run / "command").read_text().strip() == "fake_vasp_gam"
    assert "KSPACING" not in incar(run)
    kpoints = (run / "KPOINTS").read_text().splitlines()
    assert kpoints[2].strip() == "Gamma" and kpoints[3].split() == ["1", "1", "1"]

    # a big periodic cell whose KSPACING grid is 1x1x1 also uses the Γ-only binary
    big = bulk("Si", "diamond", a=5.43, cubic=True) * (3, 3, 3)
    assert vasp_kspacing_grid(big, 0.5) == [1, 1, 1]
    run = run_and_capture(big, Vasp(encut=300.0, kspacing=0.5), fake_vasp_env)
    assert (run / "command").read_text().strip() == "fake_vasp_gam"
    assert incar(run)["KSPACING"] == "0.500000"


def test_failure_flag_and_rundir(fake_vasp_env):
    at = bulk("Si", "diamond", a=5.43)
    at.calc = Vasp(encut=300.0, kpts=(2, 2, 2), workdir="vasp_runs")
    with pytest.raises(CalculationFailed, match="fake vasp"):
        at.get_potential_energy()
    assert at.info[FAILED_INFO_KEY] is True
    rundir = Path(at.info[RUNDIR_INFO_KEY])
    assert rundir.parent == fake_vasp_env / "vasp_runs"
    assert (rundir / "INCAR").exists()
    # the calculator's own parameters were restored after the per-configuration changes
    assert at.calc.input_params["setups"] is None


def test_missing_potcar_flagged(fake_vasp_env):
    at = bulk("Cu", "fcc", a=3.6)
    at.calc = Vasp(encut=300.0)
    with pytest.raises(CalculationFailed, match="POTCARs/./Cu/POTCAR"):
        at.get_potential_energy()
    assert at.info[FAILED_INFO_KEY] is True


def test_bad_wfl_vasp_kwargs_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("WFL_VASP_KWARGS", "{ncore: ")
    with pytest.raises(ValueError, match="WFL_VASP_KWARGS .* is not valid JSON"):
        Vasp()
    monkeypatch.setenv("WFL_VASP_KWARGS", "[1, 2]")
    with pytest.raises(ValueError, match="not a JSON object"):
        read_vasp_kwargs_env()
    monkeypatch.setenv("WFL_VASP_KWARGS", "")
    assert read_vasp_kwargs_env() == {}


def test_default_chunk_size_declared():
    assert Vasp.wfl_default_autopara_info == {"num_inputs_per_python_subprocess": 1}
    assert os.fspath(Vasp(workdir="x").workdir) == "x"


# The documented shell commands that write remoteinfo.json (the key is the minim run's); run through bash so quoting and expansion are exactly what a user gets.
SEED_REMOTEINFO_SH = r"""cat<<EOF > remoteinfo.json
{
 "generate_configs/minim.py::run" : {
     "sys_name": "${sys_name}",
     "job_name": "vasp_minim",
     "resources": { "num_nodes" : 1, "max_time": "24h" },
     "num_inputs_per_queued_job" : 1,
     "input_files": ["POTCARs"],
     "env_vars": ["VASP_COMMAND=${vasp_path}", "VASP_PP_PATH=POTCARs",
                  "WFL_VASP_KWARGS='{ \"ncore\": '\${EXPYRE_NCORES_PER_NODE}'}'" ]
 }
}
EOF
"""

FAKE_VASP_IN_JOB = """#!/bin/sh
# FAKE VASP for tests: records its inputs and environment, then fails
d=$(mktemp -d "{capture}/run.XXXXXX")
for f in INCAR KPOINTS POSCAR POTCAR; do [ -f "$f" ] && cp "$f" "$d/"; done
printf '%s' "$WFL_VASP_KWARGS" > "$d/WFL_VASP_KWARGS"
printf '%s' "$VASP_PP_PATH" > "$d/VASP_PP_PATH"
(cd .. && pwd) > "$d/job_dir"
exit 1
"""


def test_seed_vasp_workflow_on_local_queue(tmp_path, monkeypatch, make_local_project):
    """FILE-LEVEL (fake VASP): the documented VASP relaxation workflow as queued jobs."""
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.generate_configs.minim import run as minim_run

    root = make_local_project(cores=3)
    for name in ("VASP_COMMAND", "VASP_COMMAND_GAMMA", "VASP_PP_PATH", "WFL_VASP_KWARGS"):
        monkeypatch.delenv(name, raising=False)
    make_fake_potcars(tmp_path, ["Si"])
    capture = tmp_path / "captured"
    capture.mkdir()
    fake = tmp_path / "fake_vasp_std"
    fake.write_text(FAKE_VASP_IN_JOB.replace("{capture}", str(capture)))
    fake.chmod(0o755)
    subprocess.run(
        ["bash", "-c", SEED_REMOTEINFO_SH],
        cwd=tmp_path,
        env=dict(os.environ, sys_name="local", vasp_path=str(fake)),
        check=True,
    )
    monkeypatch.setenv("WFL_EXPYRE_INFO", str(tmp_path / "remoteinfo.json"))

    structures = [bulk("Si", "diamond", a=a) for a in (5.40, 5.46)]
    vasp_kwargs = dict(SEED_VASP_KWARGS)
    vasp_kwargs["pp"] = "."
    vasp_kwargs["setups"] = {chemsym: "" for chemsym in ["Si"]}
    out = minim_run(
        ConfigSet(structures),
        OutputSpec("relaxed.structures.xyz"),
        calculator=(Vasp, [], vasp_kwargs),
        pressure=0.0,
    )
    # the fake VASP fails every calculation: nothing relaxed, an empty (but finished) output
    assert out is not None and (tmp_path / "relaxed.structures.xyz").stat().st_size == 0

    runs = sorted(capture.glob("run.*"))
    assert len(runs) == 2  # one queued job per structure, each ran (fake) VASP once
    job_dirs = {(r / "job_dir").read_text().strip() for r in runs}
    assert len(job_dirs) == 2 and all(d.startswith(str(root)) for d in job_dirs)
    for run in runs:
        tags = incar(run)
        assert tags["NCORE"] == "3"  # ${EXPYRE_NCORES_PER_NODE} expanded in the job
        assert tags["ENCUT"] == "400.000000" and tags["KSPACING"] == "0.150000"
        assert tags["KGAMMA"] == ".TRUE." and tags["ISMEAR"] == "0"
        assert (run / "WFL_VASP_KWARGS").read_text() == '{ "ncore": 3}'
        assert (run / "VASP_PP_PATH").read_text() == "POTCARs"
        assert (run / "POTCAR").read_text().startswith("FAKE POTCAR for Si")
    for job_dir in job_dirs:
        # POTCARs staged into each job directory, env vars exported by its job script
        assert (Path(job_dir) / "POTCARs" / "Si" / "POTCAR").exists()
        script = next(Path(job_dir).glob("*.sh")).read_text()
        assert 'export VASP_PP_PATH="POTCARs"' in script
        assert f'export VASP_COMMAND="{fake}"' in script
        assert "export WFL_VASP_KWARGS=" in script


def test_failure_on_scratch_dir_is_copied_back(fake_vasp_env):
    at = bulk("Si", "diamond", a=5.43)
    at.calc = Vasp(encut=300.0, kpts=(2, 2, 2), workdir="kept", scratch_dir="scratch")
    with pytest.raises(CalculationFailed):
        at.get_potential_energy()
    rundir = Path(at.info[RUNDIR_INFO_KEY])
    assert rundir.parent == fake_vasp_env / "kept"
    assert {"INCAR", "POSCAR", "POTCAR", "KPOINTS"} <= {p.name for p in rundir.iterdir()}
    assert list((fake_vasp_env / "scratch").iterdir()) == []  # scratch always cleaned
