"""Quantum ESPRESSO (pw.x) energies and forces of rattled Si cells with wfl.

Whether the calculations run here or as queued jobs is decided by WFL_EXPYRE_INFO only
(see run_demo.sh); rerunning the script finds the finished output and computes nothing.
"""

from ase.build import bulk

from wfl.calculators.espresso import Espresso
from wfl.calculators.generic import calculate
from wfl.configset import ConfigSet, OutputSpec


def main():
    structures = []
    for i in range(4):
        at = bulk("Si", "diamond", a=5.43)
        at.rattle(stdev=0.05, seed=i)
        structures.append(at)

    qe_kwargs = {
        "pseudopotentials": {"Si": "Si.pz-vbc.UPF"},  # from Debian's quantum-espresso-data
        "input_data": {"system": {"ecutwfc": 15.0}},
        "kspacing": 0.3,  # 1/Å, ASE convention (no 2π)
        "keep_files": "default",  # keep espresso.pwi/pwo of each configuration
        "workdir": "qe_runs",
    }
    out = calculate(
        ConfigSet(structures),
        OutputSpec("si_qe.xyz"),
        calculator=(Espresso, [], qe_kwargs),
        output_prefix="QE_",
    )
    for at in out:
        flag = at.info.get("calculation_failed_message", "")
        print(
            f"{at.info['_ConfigSet_loc']}: E = {at.info.get('QE_energy', float('nan')):.5f} eV {flag}"
        )


if __name__ == "__main__":
    main()
