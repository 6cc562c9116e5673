"""One workload of bench/throughput.py, run in a fresh process by either implementation.

    python _throughput_workload.py WORKLOAD SYSTEM CHECK_INTERVAL [MAX_ALLOCATIONS | array]
    python _throughput_workload.py raw WORKLOAD START STOP

WORKLOAD is ``relax`` (16 EMT cell relaxations, 2 per job), ``trivial`` (32 items, 1 per job,
each copying ``info["x"]`` squared) or ``relax-serial`` (the relaxations in this process, no
queue: the floor). SYSTEM is an expyre system name of ``$EXPYRE_ROOT/config.json``;
CHECK_INTERVAL is seconds or ``default``; MAX_ALLOCATIONS (ours only) packs the chunks into
at most that many queue jobs (``array``: one job array, a task per chunk). Whole-node jobs (``num_nodes=1``), so on a one-node cluster
the jobs run one after the other unless packed. Prints one JSON line: ``{"wall_s": ...,
"digest": ...}``; the digest (of the relaxed energies or the squares) lets the bench check
every implementation and packing computed the same thing. The same file runs under the
reference implementation (wfl 0.3.5): it uses only the API both share. The ``raw`` form is
what the bench submits straight to the scheduler: items START:STOP, values printed as JSON.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time

import numpy as np
from ase.build import bulk
from ase.calculators.emt import EMT

N_RELAX, RELAX_PER_JOB = 16, 2
N_TRIVIAL = 32


def relax_inputs() -> list:
    """16 rattled, strained 4-atom Cu cells (the same every run: fixed seeds)."""
    configs = []
    for i in range(N_RELAX):
        atoms = bulk("Cu", "fcc", a=3.6, cubic=True)
        atoms.rattle(stdev=0.05, seed=i)
        atoms.set_cell(atoms.cell * (1.0 + 0.01 * (i % 4)), scale_atoms=True)
        atoms.info["i"] = i
        configs.append(atoms)
    return configs


def relax_cell(atoms):
    """Relax positions and cell with EMT (BFGS on a Frechet cell filter, fmax 0.05 eV/A).

    Plain ASE, the same code under both implementations, so they do the same compute.
    """
    from ase.filters import FrechetCellFilter
    from ase.optimize import BFGS

    atoms.calc = EMT()
    BFGS(FrechetCellFilter(atoms), logfile=None).run(fmax=0.05, steps=300)
    atoms.info["relaxed_energy"] = atoms.get_potential_energy()
    atoms.info["relaxed_volume"] = atoms.get_volume()
    atoms.calc = None
    return atoms


def square_info(atoms):
    """The trivial work: ``info["x_squared"] = info["x"] ** 2``."""
    atoms.info["x_squared"] = atoms.info["x"] ** 2
    return atoms


def remote_info(sys_name: str, job_name: str, per_job: int, check: str, packing: str | None):
    info = {
        "sys_name": sys_name,
        "job_name": job_name,
        "resources": {"num_nodes": 1, "max_time": "30m"},
        "num_inputs_per_queued_job": per_job,
        "timeout": 1800,
    }
    if check != "default":
        info["check_interval"] = float(check) if "." in check else int(check)
    if packing == "array":  # one job array, one task per chunk
        info["job_array"] = True
    elif packing:
        info["max_allocations"] = int(packing)
    return info


def digest(values: list) -> str:
    return hashlib.sha256(np.asarray(values, dtype=float).tobytes()).hexdigest()[:16]


def raw_chunk(workload: str, start: int, stop: int) -> None:
    """The raw scheduler's job: items ``start:stop`` computed here, values printed as JSON."""
    if workload == "relax":
        frames = [relax_cell(at) for at in relax_inputs()[start:stop]]
        values = [[at.info["relaxed_energy"], at.info["relaxed_volume"]] for at in frames]
    else:
        values = [[i**2] for i in range(start, stop)]
    print(json.dumps(values))


def main() -> None:
    if sys.argv[1] == "raw":
        raw_chunk(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    workload, sys_name, check = sys.argv[1:4]
    # by reference, not as __main__: the reference pickles functions by name, so jobs must
    # import them from this module (found through PYTHONPATH)
    from _throughput_workload import relax_cell, square_info

    packing = sys.argv[4] if len(sys.argv) > 4 else None
    from wfl.configset import ConfigSet, OutputSpec

    t0 = time.perf_counter()
    if workload in ("relax", "relax-serial"):
        from wfl.map import map as wfl_map

        autopara = {"num_python_subprocesses": 1}
        if workload == "relax":
            info = remote_info(sys_name, "tp_relax", RELAX_PER_JOB, check, packing)
            autopara = {"remote_info": info}
        out = wfl_map(ConfigSet(relax_inputs()), OutputSpec(), relax_cell, autopara_info=autopara)
        frames = sorted(out, key=lambda at: at.info["i"])
        values = [at.info["relaxed_energy"] for at in frames]
        values += [at.info["relaxed_volume"] for at in frames]
    else:
        from wfl.map import map as wfl_map

        configs = []
        for i in range(N_TRIVIAL):
            atoms = bulk("Cu")
            atoms.info["x"] = i
            configs.append(atoms)
        out = wfl_map(
            ConfigSet(configs),
            OutputSpec(),
            square_info,
            autopara_info={"remote_info": remote_info(sys_name, "tp_trivial", 1, check, packing)},
        )
        values = sorted(at.info["x_squared"] for at in out)
    wall = time.perf_counter() - t0
    print(json.dumps({"wall_s": wall, "digest": digest(values), "n": len(values)}))


if __name__ == "__main__":
    main()
