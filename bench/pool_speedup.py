"""Benchmark: wall time of 64 EMT relaxations, serial vs a pool of 2 Python subprocesses.

Run with ``.venv/bin/python bench/pool_speedup.py [--n-configs 64] [--subprocesses 2]``.
Prints a table of wall times and the speed-up ratio (goal on a 2-core machine: >= 1.7x).
The results of both runs are also checked to be bit-identical.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT

from wfl.configset import OutputSpec
from wfl.generate.optimize import optimize


def perturbed_cells(n: int, seed: int = 0) -> list:
    """n rattled 32-atom fcc Cu cells (EMT relaxes each in a fraction of a second)."""
    rng = np.random.default_rng(seed)
    cells = []
    for _ in range(n):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True) * (2, 2, 2)
        atoms.positions += rng.normal(scale=0.1, size=atoms.positions.shape)
        cells.append(atoms)
    return cells


def timed_relaxations(configs: list, num_subprocesses: int) -> tuple[float, list]:
    """Wall time in s of relaxing ``configs`` with the given pool size, and the results."""
    start = time.perf_counter()
    out = optimize(
        configs,
        OutputSpec(),
        calculator=(EMT, [], {}),
        fmax=1e-3,
        autopara_info={"num_python_subprocesses": num_subprocesses},
    )
    results = list(out)
    return time.perf_counter() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-configs", type=int, default=64)
    parser.add_argument("--subprocesses", type=int, default=2)
    args = parser.parse_args()

    configs = perturbed_cells(args.n_configs)
    t_serial, serial = timed_relaxations(configs, 0)
    t_pool, pooled = timed_relaxations(configs, args.subprocesses)
    identical = all(
        np.array_equal(a.positions, b.positions) for a, b in zip(serial, pooled, strict=True)
    )
    steps = sum(at.info["optimize_n_steps"] for at in serial)

    print(
        f"{args.n_configs} EMT relaxations (32-atom Cu, fmax 1e-3 eV/Å, {steps} BFGS steps), "
        f"{os.cpu_count()} cores"
    )
    print(f"{'mode':<22}{'wall time (s)':>15}")
    print(f"{'serial':<22}{t_serial:>15.2f}")
    print(f"{f'{args.subprocesses} subprocesses':<22}{t_pool:>15.2f}")
    print(f"{'speed-up (ratio)':<22}{t_serial / t_pool:>15.2f}")
    print(f"{'results identical':<22}{str(identical):>15}")


if __name__ == "__main__":
    main()
