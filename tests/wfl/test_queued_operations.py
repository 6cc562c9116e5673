"""Every operation that can go to the queue gives, queued, what it gives in this process.

The operations with bit-identity tests of their own on the local queue (optimize, md, map,
generic calculate: tests/wfl/test_remote_autopara.py) are not repeated here; this covers the
rest of the README's table of keys: selection, the supercell generators and buildcell. Each
runs once in this process and once selected by its own README key in ``WFL_EXPYRE_INFO``
(one item per queued job, real jobs on the embedded local queue), and the two outputs must
agree, while the jobs database shows that the queued run really ran as jobs.
"""

from __future__ import annotations

import json
import sqlite3
import stat
import sys
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from test_readme_keys import readme_key_table
from wfl.configset import ConfigSet, OutputSpec

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "buildcell_standin.py"
# covered by tests/wfl/test_remote_autopara.py, or no autoparallelize (the fits)
COVERED_ELSEWHERE = (
    "wfl.generate.optimize.",
    "wfl.generate.md.",
    "wfl.map.",
    "wfl.calculators.generic.",
    "wfl.generate_configs.minim.",
    "wfl.fit.",
)
OPERATIONS = sorted(op for op in readme_key_table() if not op.startswith(COVERED_ELSEWHERE))


def _crystals() -> list:
    """Three small crystals: two species, so antisites exist."""
    crystals = []
    for i, a in enumerate((4.1, 4.15, 4.2)):
        at = bulk("NaCl", "rocksalt", a=a, cubic=True)
        at.info["n"] = i
        crystals.append(at)
    return crystals


def _buildcell_exe(tmp_path: Path) -> str:
    """A ``buildcell`` stand-in (no AIRSS binary can be installed here): it reads buildcell's
    input and prints one random structure of the asked composition."""
    exe = tmp_path / "bin" / "buildcell"
    exe.parent.mkdir(exist_ok=True)
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(exe)


def _run(operation: str, out: OutputSpec, tmp_path: Path) -> ConfigSet:
    """Call ``operation`` on small inputs, with a fixed rng where it draws random numbers."""
    inputs = ConfigSet(_crystals())
    rng = np.random.default_rng(5)
    if operation == "wfl.select.simple.by_bool_func":
        from wfl.select.simple import by_bool_func

        return by_bool_func(inputs, out, _lattice_above_4_12)
    if operation == "wfl.select.simple.by_index":
        from wfl.select.simple import by_index

        return by_index(inputs, out, [0, 2])
    if operation == "wfl.generate.buildcell.buildcell":
        from wfl.generate.buildcell import buildcell, create_input

        text = create_input(
            z=[11, 17], vol_per_atom=[20.0, 20.0], bond_lengths=[2.4, 2.4], composition=[1, 1]
        )
        return buildcell(range(3), out, _buildcell_exe(tmp_path), text)
    if operation.startswith("wfl.generate.supercells."):
        from wfl.generate import supercells

        make = getattr(supercells, operation.rsplit(".", 1)[1])
        if make is supercells.surface:
            return make(inputs, out, 40, 6.0, 8.0, simple_cut=True, rng=rng)
        if make is supercells.largest_bulk:
            return make(inputs, out, 16, primitive=False, pert=0.05, rng=rng)
        return make(inputs, out, 16, primitive=False, pert=0.05, rng=rng)
    raise AssertionError(f"no call for {operation}: add one to _run")


def _lattice_above_4_12(atoms) -> bool:
    return atoms.cell.lengths()[0] > 4.12


def _summary(configs: ConfigSet, exact: bool) -> list:
    """What an output holds: formulas, cells, positions and info values when ``exact``;
    otherwise (buildcell's structures are random by design, their size too) the species."""
    summary = []
    for at in configs:
        if not exact:
            summary.append(sorted(set(at.get_chemical_symbols())))
            continue
        entry = [at.get_chemical_formula()]
        entry += [at.cell.array.round(12).tolist(), at.positions.round(12).tolist()]
        entry.append(sorted((k, repr(v)) for k, v in at.info.items()))
        summary.append(entry)
    return summary


def _n_jobs(root: Path) -> int:
    with sqlite3.connect(root / "jobs.db") as db:
        return db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


@pytest.mark.parametrize("operation", OPERATIONS)
def test_queued_operation_gives_what_it_gives_here(
    operation, tmp_path, make_local_project, monkeypatch
):
    root = make_local_project(cores=2)
    exact = operation != "wfl.generate.buildcell.buildcell"
    here = _run(operation, OutputSpec(str(tmp_path / "here.xyz")), tmp_path)

    key = readme_key_table()[operation]
    queued_info = {
        "sys_name": "local",
        "job_name": "queued_op",
        "resources": {"num_cores": 1, "max_time": "10m"},
        "partial_node": True,
        "num_inputs_per_queued_job": 1,
        "check_interval": 0.5,
    }
    monkeypatch.setenv("WFL_EXPYRE_INFO", json.dumps({key: queued_info}))
    monkeypatch.setenv("WFL_EXPYRE_INFO_STRICT", "1")  # a key that stops matching fails here
    queued = _run(operation, OutputSpec(str(tmp_path / "queued.xyz")), tmp_path)

    assert len(list(here)) > 0, f"{operation} produced nothing to compare"
    assert _summary(queued, exact) == _summary(here, exact)
    assert _n_jobs(root) >= 2, "the queued run did not run as jobs, one per item"
