"""wfl.fit.gap.simple.run_gap_fit with the real gap_fit (quippy-ase), here and as a queued job."""

import copy
import json

import numpy as np
import pytest
from fit_testutil import GAP_PARAMS, rmse_per_atom

from wfl.configset import ConfigSet
from wfl.fit.gap.simple import gap_fit_argv, load_params, run_gap_fit
from wfl.fit.tasks import read_record


def test_gap_fit_argv_translation():
    argv = gap_fit_argv(
        {
            "gap": [{"distance_2b": True, "cutoff": 4.0}, "soap l_max=3 cutoff=4.0"],
            "e0": {"Cu": 3.51, "Si": -0.1},
            "default_sigma": [0.01, 0.1, 0.0, 0.0],
            "config_type_sigma": {"bulk": [0.001, 0.01, 0.0, 0.0]},
            "sparse_separate_file": True,
            "do_copy_at_file": False,
        }
    )
    assert argv == [
        "gap={distance_2b cutoff=4.0 : soap l_max=3 cutoff=4.0}",
        "e0={Cu:3.51:Si:-0.1}",
        "default_sigma={0.01 0.1 0.0 0.0}",
        "config_type_sigma={bulk:0.001:0.01:0.0:0.0}",
        "sparse_separate_file=T",
        "do_copy_at_file=F",
    ]


def test_parameter_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="first key must be the descriptor type"):
        gap_fit_argv({"gap": [{"cutoff": 4.0, "soap": True}]})
    with pytest.raises(ValueError, match="at_file is set by wfl"):
        gap_fit_argv({"at_file": "x.xyz"})
    with pytest.raises(ValueError, match="neither a dict nor YAML"):
        load_params(42)
    yaml_file = tmp_path / "params.yaml"
    yaml_file.write_text("e0: {Cu: 3.51}\ndefault_sigma: [0.01, 0.1, 0, 0]\n")
    assert load_params(yaml_file) == {"e0": {"Cu": 3.51}, "default_sigma": [0.01, 0.1, 0, 0]}


def test_local_fit_reproduced_by_quippy_and_skipped_on_rerun(
    tmp_path, cu_configs, gap_fit_available
):
    from quippy.potential import Potential

    params = dict(GAP_PARAMS, gp_file=str(tmp_path / "fit" / "Cu.xml"))
    gp = run_gap_fit(ConfigSet(cu_configs), params, tmp_path / "fit" / "gap_fit.out")
    assert gp == tmp_path / "fit" / "Cu.xml"
    assert list((tmp_path / "fit").glob("Cu.xml.sparseX.*"))  # companions beside the xml
    assert "libAtoms::Finalise" in (tmp_path / "fit" / "gap_fit.out").read_text()

    # a real, accurate potential: EMT energies to a few meV/atom (reference recipe: 3.5)
    assert rmse_per_atom(cu_configs, Potential(param_filename=str(gp))) < 0.010

    # rerun with the same inputs: nothing is refitted
    record = read_record(gp)
    mtime = gp.stat().st_mtime_ns
    assert run_gap_fit(cu_configs, params, tmp_path / "fit" / "gap_fit.out") == gp
    assert gp.stat().st_mtime_ns == mtime and read_record(gp) == record

    # other parameters for the same file: a clear error, then an explicit overwrite refits
    changed = copy.deepcopy(params)
    changed["default_sigma"] = [0.02, 0.2, 0.0, 0.0]
    with pytest.raises(ValueError, match="different parameters .* overwrite=True"):
        run_gap_fit(cu_configs, changed, None)
    run_gap_fit(cu_configs, changed, None, overwrite=True)
    assert read_record(gp)["digest"] != record["digest"]


def test_gap_fit_failure_reports_its_message(tmp_path, cu_configs, gap_fit_available):
    params = dict(GAP_PARAMS, gp_file=str(tmp_path / "bad.xml"), energy_parameter_name="NOPE")
    params["gap"] = [dict(GAP_PARAMS["gap"][0], n_sparse=-3)]
    with pytest.raises(RuntimeError, match="gap_fit failed with exit code"):
        run_gap_fit(cu_configs, params, None)
    assert not (tmp_path / "bad.xml").exists()


def test_queued_fit_on_local_queue_matches_local_fit(
    tmp_path, monkeypatch, cu_configs, gap_fit_available, local_queue
):
    from quippy.potential import Potential

    local = run_gap_fit(cu_configs, dict(GAP_PARAMS, gp_file=str(tmp_path / "here.xml")), None)
    assert read_record(local)["job_id"] is None

    # selected by the documented variable, as one RemoteInfo dict in JSON
    monkeypatch.setenv("WFL_GAP_SIMPLE_FIT_REMOTEINFO", json.dumps(local_queue("gap_simple")))
    queued = run_gap_fit(
        cu_configs, dict(GAP_PARAMS, gp_file=str(tmp_path / "queued.xml")), tmp_path / "q.out"
    )
    record = read_record(queued)
    assert record["job_id"]  # made inside a queued job
    assert "libAtoms::Finalise" in (tmp_path / "q.out").read_text()

    test = cu_configs[::5]
    e_local = [Potential(param_filename=str(local)).get_potential_energy(at) for at in test]
    e_queued = [Potential(param_filename=str(queued)).get_potential_energy(at) for at in test]
    assert np.allclose(e_local, e_queued, atol=1e-8)  # same inputs and seed: same potential

    # a rerun finds the finished potential: no new job
    again = run_gap_fit(
        cu_configs, dict(GAP_PARAMS, gp_file=str(tmp_path / "queued.xml")), tmp_path / "q.out"
    )
    assert again == queued and read_record(again)["job_id"] == record["job_id"]


@pytest.mark.remote
def test_queued_fit_on_remote_system(tmp_path, cu_configs, gap_fit_available, remote_queue):
    from quippy.potential import Potential

    gp = run_gap_fit(
        cu_configs,
        dict(GAP_PARAMS, gp_file=str(tmp_path / "remote.xml")),
        None,
        remote_info=remote_queue("gap_simple_remote"),
    )
    assert read_record(gp)["job_id"]
    assert rmse_per_atom(cu_configs, Potential(param_filename=str(gp))) < 0.010


def test_gap_fit_error_message_comes_from_stderr(tmp_path, cu_configs, gap_fit_available):
    params = dict(GAP_PARAMS, gp_file=str(tmp_path / "seed0.xml"), rnd_seed=0)
    with pytest.raises(RuntimeError, match="SYSTEM ABORT.*seed"):
        run_gap_fit(cu_configs, params, None)


def test_selected_by_wfl_expyre_info_key(
    tmp_path, monkeypatch, cu_configs, gap_fit_available, local_queue
):
    """A WFL_EXPYRE_INFO key naming the fit function (and the calling script) selects it."""
    from ase.io import write

    write(tmp_path / "train.xyz", cu_configs)
    info = {"test_gap_simple.py::fit_from_script,gap/simple.py::run_gap_fit": local_queue("key")}
    monkeypatch.setenv("WFL_EXPYRE_INFO", json.dumps(info))

    def fit_from_script(name):
        # the fitting configurations given as a file name
        return run_gap_fit(
            str(tmp_path / "train.xyz"), dict(GAP_PARAMS, gp_file=str(tmp_path / name)), None
        )

    assert read_record(fit_from_script("by_key.xml"))["job_id"]  # the key matched: a job
    # called from another function, the key does not match: runs here
    here = run_gap_fit(cu_configs, dict(GAP_PARAMS, gp_file=str(tmp_path / "here.xml")), None)
    assert read_record(here)["job_id"] is None
