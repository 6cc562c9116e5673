"""Committee fits: n independent GAP fits as n queued jobs that run at the same time."""

import json

import numpy as np
import pytest
from fit_testutil import GAP_PARAMS, rmse_per_atom

from wfl.fit.committee import fit_committee, member_seeds, subsample
from wfl.fit.tasks import read_record


def test_seeds_and_subsamples(cu_configs):
    assert member_seeds(3, None, 10) == [10, 11, 12]
    assert member_seeds(2, None, 1) == [1, 2]
    with pytest.raises(ValueError, match="got 2 seeds for n_committee=3"):
        member_seeds(3, [1, 2], 0)
    a, b = subsample(cu_configs, 0.5, 1), subsample(cu_configs, 0.5, 2)
    assert len(a) == len(b) == 15
    assert [at.info["REF_energy"] for at in a] == [
        at.info["REF_energy"] for at in subsample(cu_configs, 0.5, 1)
    ]  # reproducible
    assert [at.info["REF_energy"] for at in a] != [at.info["REF_energy"] for at in b]
    with pytest.raises(ValueError, match="fitter='mace' is not supported"):
        fit_committee("mace", cu_configs, {}, 2, "x")


def test_gap_committee_of_3_runs_as_3_concurrent_jobs(
    tmp_path, monkeypatch, cu_configs, gap_fit_available, local_queue
):
    from quippy.potential import Potential

    monkeypatch.setenv("WFL_GAP_SIMPLE_FIT_REMOTEINFO", json.dumps(local_queue("committee")))
    # a slower member fit (more sparse points) so that each one runs for a while
    params = json.loads(json.dumps(GAP_PARAMS))
    params["gap"][1]["n_sparse"] = 200
    members = fit_committee(
        "gap", cu_configs, params, 3, "Cu_gap", fit_dir=tmp_path, subsample_fraction=0.8
    )
    assert members == [tmp_path / f"Cu_gap.committee_{i}.xml" for i in range(3)]

    records = [read_record(m) for m in members]
    assert len({r["job_id"] for r in records}) == 3 and all(r["job_id"] for r in records)
    # they ran concurrently: some instant lies inside every member's fit
    latest_start = max(r["started"] for r in records)
    earliest_end = min(r["finished"] for r in records)
    assert latest_start < earliest_end, [(r["started"], r["finished"]) for r in records]

    # independent fits (different subsamples/seeds): similar accuracy, different predictions
    test = cu_configs[:6]
    predictions = []
    for m in members:
        pot = Potential(param_filename=str(m))
        assert rmse_per_atom(cu_configs, pot) < 0.02
        predictions.append([pot.get_potential_energy(at.copy()) for at in test])
    assert np.ptp(np.array(predictions), axis=0).max() > 1e-6

    # rerun: all members found finished, no new jobs
    again = fit_committee(
        "gap", cu_configs, params, 3, "Cu_gap", fit_dir=tmp_path, subsample_fraction=0.8
    )
    assert again == members and [read_record(m) for m in members] == records
