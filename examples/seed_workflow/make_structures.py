"""Write a handful of perturbed fcc cells to relax (the input of the relaxation workflow).

Usage: python make_structures.py [N] [OUTFILE]   (defaults: 8 structures.xyz)
"""

import sys

import numpy as np
from ase.build import bulk
from ase.io import write

n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
outfile = sys.argv[2] if len(sys.argv) > 2 else "structures.xyz"
rng = np.random.default_rng(2026)
cells = []
for i in range(n):
    element, a0 = [("Cu", 3.61), ("Al", 4.05), ("Ni", 3.52)][i % 3]
    at = bulk(element, "fcc", a=a0 * rng.uniform(0.96, 1.04), cubic=True)
    at.rattle(stdev=0.08, seed=int(rng.integers(1 << 30)))
    at.info["structure_id"] = i
    cells.append(at)
write(outfile, cells)
print(f"wrote {n} perturbed fcc cells to {outfile}")
