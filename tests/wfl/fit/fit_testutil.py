"""Helpers for the fit tests: EMT Cu data, tiny fit parameters, system discovery."""

import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT

FIT_ENV_VARS = (
    "WFL_GAP_SIMPLE_FIT_REMOTEINFO",
    "WFL_GAP_MULTISTAGE_FIT_REMOTEINFO",
    "WFL_ACE_FIT_REMOTEINFO",
    "WFL_EXPYRE_INFO",
    "WFL_GAP_FIT_COMMAND",
    "WFL_PACEMAKER_COMMAND",
)

E0_CU = 3.51  # EMT energy of an isolated Cu atom, eV

GAP_PARAMS = {
    "gap": [
        {
            "distance_2b": True,
            "cutoff": 4.0,
            "covariance_type": "ard_se",
            "delta": 1.0,
            "theta_uniform": 1.0,
            "n_sparse": 20,
            "sparse_method": "uniform",
        },
        {
            "soap": True,
            "l_max": 3,
            "n_max": 4,
            "atom_sigma": 0.5,
            "cutoff": 4.0,
            "cutoff_transition_width": 0.5,
            "delta": 0.2,
            "covariance_type": "dot_product",
            "zeta": 4,
            "n_sparse": 50,
            "sparse_method": "cur_points",
        },
    ],
    "e0": {"Cu": E0_CU},
    "default_sigma": [0.01, 0.1, 0.0, 0.0],
    "energy_parameter_name": "REF_energy",
    "force_parameter_name": "REF_forces",
    "sparse_jitter": 1.0e-8,
    "rnd_seed": 1,
}


def make_cu_configs(n=30):
    """Rattled fcc Cu cells (4 or 8 atoms) with EMT labels under REF_* keys."""
    rng = np.random.default_rng(42)
    frames = []
    for i in range(n):
        at = bulk("Cu", "fcc", a=rng.uniform(3.5, 3.7), cubic=True)
        if i % 3 == 0:
            at = at * (2, 1, 1)
        at.rattle(stdev=0.05 + 0.05 * (i % 4), seed=i)
        at.calc = EMT()
        at.info["REF_energy"] = at.get_potential_energy()
        at.arrays["REF_forces"] = at.get_forces()
        at.calc = None
        at.info["config_type"] = "bulk"
        frames.append(at)
    return frames


def expyre_test_config():
    """The config.json listing the test systems: in env EXPYRE_PYTEST_CONFIG_DIR (a directory
    holding config.json, or the file itself) if set, else $HOME/.expyre/config.json."""
    custom = os.environ.get("EXPYRE_PYTEST_CONFIG_DIR")
    if custom:
        path = Path(custom)
        return path / "config.json" if path.is_dir() else path
    home = os.environ.get("HOME") or os.path.expanduser("~")
    return Path(home) / ".expyre" / "config.json"


def remote_systems():
    """Test systems (not local) whose names match env EXPYRE_PYTEST_SYSTEMS (a regex)."""
    cfg = expyre_test_config()
    if not cfg.is_file():
        return []
    names = [n for n in json.loads(cfg.read_text()).get("systems", {}) if n != "local"]
    pattern = os.environ.get("EXPYRE_PYTEST_SYSTEMS")
    if pattern:
        names = [n for n in names if re.search(pattern, n)]
    return names


def rmse_per_atom(configs, calc, offset_per_atom=0.0):
    """RMS of (E_calc + offset·N - REF_energy)/N over configs, eV/atom."""
    errors = []
    for at in configs:
        at = at.copy()
        at.calc = calc
        e = at.get_potential_energy() + offset_per_atom * len(at)
        errors.append((e - at.info["REF_energy"]) / len(at))
    return float(np.sqrt(np.mean(np.square(errors))))


def pacemaker_available():
    return (
        shutil.which("pacemaker") is not None
        or (Path(sys.executable).parent / "pacemaker").exists()
    )
