"""wfl.fit.gap.multistage.fit with the real gap_fit: here, each stage a job, the whole one job."""

import copy
import json

import numpy as np
import pytest
from fit_testutil import E0_CU, GAP_PARAMS

from wfl.fit.gap.multistage import fit, per_atom_energy_rmse, per_atom_energy_spread
from wfl.fit.tasks import read_record

TWO_B, SOAP = ({k: v for k, v in GAP_PARAMS["gap"][i].items() if k != "delta"} for i in range(2))
MULTISTAGE_PARAMS = {
    "gap_params": {
        "e0": {"Cu": E0_CU},
        "default_sigma": [0.01, 0.1, 0.0, 0.0],
        "sparse_jitter": 1.0e-8,
    },
    "stages": [{"descriptors": [TWO_B]}, {"descriptors": [SOAP], "delta_factor": 1.0}],
}


def stage_gap_line(stdout_file):
    """The descriptor string gap_fit echoed for its 'gap' argument."""
    for line in stdout_file.read_text().splitlines():
        if line.strip().startswith("gap = "):
            return line
    raise AssertionError(f"no 'gap = ' line in {stdout_file}")


def delta_values(gap_line):
    return [
        float(tok.split("=")[1].rstrip('"')) for tok in gap_line.split() if tok.startswith("delta=")
    ]


def test_stages_here_with_derived_deltas(tmp_path, cu_configs, gap_fit_available):
    final = fit(cu_configs, "Cu_ms", MULTISTAGE_PARAMS, run_dir=tmp_path, seed=1)
    stage0 = tmp_path / "Cu_ms.stage_0.xml"
    assert final == tmp_path / "Cu_ms.xml" and stage0.exists()

    # stage 0's delta: spread of the reference per-atom energies; stage 1's new descriptor:
    # the RMS per-atom error stage 0 left; the 2b descriptor keeps its stage-0 delta
    spread = per_atom_energy_spread(cu_configs, "REF_energy", {"Cu": E0_CU})
    rmse0 = per_atom_energy_rmse(cu_configs, stage0, "REF_energy")
    (d0,) = delta_values(stage_gap_line(tmp_path / "Cu_ms.stage_0.stdout"))
    d_2b, d_soap = delta_values(stage_gap_line(tmp_path / "Cu_ms.stdout"))
    assert d0 == pytest.approx(spread, rel=1e-9) and d_2b == pytest.approx(spread, rel=1e-9)
    assert d_soap == pytest.approx(rmse0, rel=1e-9)

    # adding SOAP improved on the pair potential
    assert per_atom_energy_rmse(cu_configs, final, "REF_energy") < rmse0

    # a rerun fits nothing
    mtimes = {p: p.stat().st_mtime_ns for p in (stage0, final)}
    assert fit(cu_configs, "Cu_ms", MULTISTAGE_PARAMS, run_dir=tmp_path, seed=1) == final
    assert all(p.stat().st_mtime_ns == m for p, m in mtimes.items())


def test_bad_params_are_clear_errors(cu_configs):
    with pytest.raises(ValueError, match="non-empty list 'stages'"):
        fit(cu_configs, "x", {"gap_params": {}})
    with pytest.raises(ValueError, match="unknown key"):
        fit(cu_configs, "x", {"stages": [{"descriptors": [TWO_B]}], "gap": {}})
    with pytest.raises(ValueError, match="stage 0 .* no 'descriptors'"):
        fit(cu_configs, "x", {"stages": [{"delta_factor": 2}]})


def test_each_stage_its_own_job(tmp_path, monkeypatch, cu_configs, gap_fit_available, local_queue):
    monkeypatch.setenv("WFL_GAP_SIMPLE_FIT_REMOTEINFO", json.dumps(local_queue("ms_stage")))
    final = fit(cu_configs, "Cu_ms", MULTISTAGE_PARAMS, run_dir=tmp_path / "staged", seed=1)
    ids = [
        read_record(tmp_path / "staged" / n)["job_id"] for n in ("Cu_ms.stage_0.xml", "Cu_ms.xml")
    ]
    assert all(ids) and ids[0] != ids[1]  # two stages, two queued jobs

    here = fit(
        cu_configs,
        "Cu_ms",
        MULTISTAGE_PARAMS,
        run_dir=tmp_path / "here",
        seed=1,
        stage_remote_info=False,
    )
    assert read_record(here)["job_id"] is None
    assert per_atom_energy_rmse(cu_configs, final, "REF_energy") == pytest.approx(
        per_atom_energy_rmse(cu_configs, here, "REF_energy"), abs=1e-9
    )


def test_whole_multistage_one_job(
    tmp_path, monkeypatch, cu_configs, gap_fit_available, local_queue
):
    monkeypatch.setenv("WFL_GAP_MULTISTAGE_FIT_REMOTEINFO", json.dumps(local_queue("ms_whole")))
    # stages must NOT become jobs of their own inside the multistage job
    monkeypatch.setenv("WFL_GAP_SIMPLE_FIT_REMOTEINFO", json.dumps(local_queue("ms_inner")))
    final = fit(cu_configs, "Cu_ms", MULTISTAGE_PARAMS, run_dir=tmp_path, seed=1)
    whole = json.loads((tmp_path / ".Cu_ms.multistage.wfl-fit.json").read_text())
    stage_ids = {read_record(tmp_path / n)["job_id"] for n in ("Cu_ms.stage_0.xml", "Cu_ms.xml")}
    assert len(stage_ids) == 1 and None not in stage_ids  # both stages inside one job
    assert whole["job_id"] in stage_ids
    assert (tmp_path / "Cu_ms.stage_0.stdout").exists()
    assert per_atom_energy_rmse(cu_configs, final, "REF_energy") < 0.05

    # rerun: the whole-job record matches, nothing is submitted or rewritten
    mtime = final.stat().st_mtime_ns
    assert fit(cu_configs, "Cu_ms", MULTISTAGE_PARAMS, run_dir=tmp_path, seed=1) == final
    assert final.stat().st_mtime_ns == mtime

    # different settings are refused without overwrite
    changed = copy.deepcopy(MULTISTAGE_PARAMS)
    changed["stages"][1]["delta_factor"] = 2.0
    with pytest.raises(ValueError, match="overwrite=True"):
        fit(cu_configs, "Cu_ms", changed, run_dir=tmp_path, seed=1)
    assert np.isfinite(per_atom_energy_rmse(cu_configs, final, "REF_energy"))
