"""Fit GAP (simple, multistage, committee of 3) and ACE potentials to train.xyz.

Which fits run as queued jobs is decided by environment variables only (see run_demo.sh):
WFL_GAP_SIMPLE_FIT_REMOTEINFO, WFL_GAP_MULTISTAGE_FIT_REMOTEINFO, WFL_ACE_FIT_REMOTEINFO.
Without them everything runs in this process. Rerunning the script refits nothing.
"""

import numpy as np
from ase.io import read

from wfl.configset import ConfigSet
from wfl.fit import ace
from wfl.fit.committee import fit_committee
from wfl.fit.gap import multistage
from wfl.fit.gap.simple import run_gap_fit
from wfl.fit.tasks import read_record


def rmse_mev_per_atom(calc, configs, offset_per_atom=0.0):
    err = []
    for at in configs:
        at = at.copy()
        at.calc = calc
        err.append(
            (at.get_potential_energy() + offset_per_atom * len(at) - at.info["REF_energy"])
            / len(at)
        )
    return 1000 * float(np.sqrt(np.mean(np.square(err))))


def where(path):
    job = read_record(path).get("job_id")
    return f"queued job {job}" if job else "this process"


def main():
    train = ConfigSet("train.xyz")
    configs = read("train.xyz", ":")
    from quippy.potential import Potential

    gap = run_gap_fit(train, "gap_params.yaml", "gap_simple/gap_fit.stdout")
    print(
        f"GAP simple:     {gap}  ({where(gap)}), "
        f"RMSE {rmse_mev_per_atom(Potential(param_filename=str(gap)), configs):.1f} meV/atom"
    )

    ms = multistage.fit(train, "Cu_ms", "multistage_params.yaml", run_dir="gap_multistage", seed=1)
    print(
        f"GAP multistage: {ms}  ({where(ms)}), "
        f"RMSE {rmse_mev_per_atom(Potential(param_filename=str(ms)), configs):.1f} meV/atom"
    )

    members = fit_committee(
        "gap",
        train,
        "gap_params.yaml",
        3,
        "Cu_gap",
        fit_dir="gap_committee",
        subsample_fraction=0.8,
    )
    t0 = min(read_record(m)["started"] for m in members)
    for m in members:
        rec = read_record(m)
        # jobs run concurrently as far as the queue's cores allow (the local queue: all cores)
        print(
            f"GAP committee:  {m.name}  ({where(m)}) "
            f"ran from {rec['started'] - t0:.1f} to {rec['finished'] - t0:.1f} s"
        )

    pot = ace.fit(train, "Cu_ace", "ace_params.yaml", fit_dir="ace_fit", seed=42)
    from pyace import PyACECalculator

    # the ACE model predicts E - N*E0 (reference_energy in ace_params.yaml)
    print(
        f"ACE (pyace):    {pot}  ({where(pot)}), "
        f"RMSE {rmse_mev_per_atom(PyACECalculator(str(pot)), configs, 3.51):.1f} meV/atom"
    )


if __name__ == "__main__":
    main()
