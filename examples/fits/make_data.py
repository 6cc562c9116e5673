"""Make EMT-labelled Cu training data: train.xyz with REF_energy / REF_forces.

Usage: python make_data.py [N_CONFIGS] [OUTPUT]
"""

import sys

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.io import write


def main(n: int = 30, output: str = "train.xyz") -> None:
    rng = np.random.default_rng(42)
    frames = []
    for i in range(n):
        at = bulk("Cu", "fcc", a=rng.uniform(3.5, 3.7), cubic=True)
        if i % 3 == 0:
            at = at * (2, 1, 1)
        at.rattle(stdev=0.05 + 0.05 * (i % 4), seed=i)
        at.calc = EMT()
        # labels under REF_* keys: plain energy/forces would become a SinglePointCalculator
        at.info["REF_energy"] = at.get_potential_energy()
        at.arrays["REF_forces"] = at.get_forces()
        at.calc = None
        at.info["config_type"] = "bulk"
        frames.append(at)
    write(output, frames, format="extxyz")


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 30,
        sys.argv[2] if len(sys.argv) > 2 else "train.xyz",
    )
