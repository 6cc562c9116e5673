"""Shared test data for wfl tests: small perturbed EMT systems that run in milliseconds.

(A plainly named module, not conftest.py: tests import it directly.)
"""

import numpy as np
from ase.build import bulk


def perturbed_cu_cells(n, a=3.65, rattle=0.05, seed=0, repeat=(1, 1, 1)):
    """n small fcc Cu cells with rattled positions, each tagged with info["id"] = index."""
    rng = np.random.default_rng(seed)
    configs = []
    for i in range(n):
        atoms = bulk("Cu", "fcc", a=a, cubic=True) * repeat
        atoms.positions += rng.normal(scale=rattle, size=atoms.positions.shape)
        atoms.info["id"] = i
        configs.append(atoms)
    return configs
