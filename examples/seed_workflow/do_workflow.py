"""The documented VASP relaxation workflow, with ASE's EMT standing in for VASP.

Which calls go to the queue, and with what resources, is chosen by WFL_EXPYRE_INFO
(see remoteinfo.json) -- this script does not change between a laptop and a cluster.
Rerun it after an interruption: finished work is reused, nothing is submitted twice.
"""

import numpy as np
from ase.calculators.emt import EMT

from wfl.configset import ConfigSet, OutputSpec
from wfl.generate_configs.minim import run as minim_run

infile = "structures.xyz"
ci = ConfigSet(infile)
co = OutputSpec("relaxed." + infile)

calculator_kwargs = {}  # VASP would take the workflow's vasp_kwargs here

# do relaxation (positions and cell, at zero pressure)
ci_relaxed = minim_run(ci, co, calculator=(EMT, [], calculator_kwargs), pressure=0.0, fmax=0.01)

print(
    f"{'id':>3} {'formula':>8} {'E (eV/atom)':>12} {'V (A^3/atom)':>13} {'max|F| (eV/A)':>14} {'converged':>9}"
)
for at in ci_relaxed:
    # results are stored in info/arrays under the operation's prefix
    energy = at.info["optimize_energy"] / len(at)
    fmax = np.linalg.norm(at.arrays["optimize_forces"], axis=1).max()
    print(
        f"{at.info['structure_id']:>3} {at.get_chemical_formula():>8} {energy:>12.5f} "
        f"{at.get_volume() / len(at):>13.4f} {fmax:>14.5f} {str(at.info['optimize_converged']):>9}"
    )
