"""The documented VASP relaxation workflow (needs a real VASP and POTCARs; not run in CI).

Prepare (the documented shell commands):
    export WFL_EXPYRE_INFO=$PWD/remoteinfo_vasp.json   # sys_name, vasp_path filled in
    ls POTCARs/*/POTCAR                                # one POTCAR per element
    python vasp_minim.py structures.xyz
Each structure is relaxed by VASP in its own queued job; POTCARs/ is staged into each job
and WFL_VASP_KWARGS='{"ncore": N}' is expanded by the job's shell.
"""

import sys

from ase.io import read

from wfl.calculators.vasp import Vasp
from wfl.configset import ConfigSet, OutputSpec
from wfl.generate_configs.minim import run as minim_run


def main(infile):
    ci = ConfigSet(infile)
    co = OutputSpec("relaxed." + infile)

    vasp_kwargs = {
        "encut": 400.0,
        "ismear": 0,
        "sigma": 0.1,
        "ediff": 1.0e-7,
        "kspacing": 0.15,
        "kgamma": True,
    }
    # POTCARs are $VASP_PP_PATH/<symbol>/POTCAR (wfl's Vasp defaults to exactly this)
    vasp_kwargs["pp"] = "."
    vasp_kwargs["setups"] = {
        chemsym: "" for at in read(infile, ":") for chemsym in at.get_chemical_symbols()
    }

    relaxed = minim_run(ci, co, calculator=(Vasp, [], vasp_kwargs), pressure=0.0)
    print(f"{len(list(relaxed))} structures relaxed into {co}")


if __name__ == "__main__":
    main(sys.argv[1])
