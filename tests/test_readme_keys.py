"""The README's table "Keys of the built-in operations" matches the code.

Three checks: every function of ``wfl`` that hands its work to the queue (it calls
``autoparallelize`` or, for the fits, ``select_single_job_remote_info``) has a row; the key in
each row of an autoparallelized operation is the one the code itself reports for that call
(``WFL_EXPYRE_INFO_STRICT`` names a call's keys when none matches); and each row's key,
used as a ``WFL_EXPYRE_INFO`` key, really selects the call: the call then goes to the queue
and stops before submitting anything, on the preflight's error about the system the key
names (a system that exists nowhere), so nothing runs.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from wfl.configset import ConfigSet, OutputSpec

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src" / "wfl"
NO_SUCH_SYSTEM = "readme_keys_no_such_system"
_ROW = re.compile(r"^\| `(wfl\.[\w.]+)` \| `([^`]+)` \|")


def readme_key_table() -> dict[str, str]:
    """{dotted operation name: key} from the README's table."""
    text = (REPO / "README.md").read_text()
    section = text.split("### Keys of the built-in operations", 1)[1].split("\n#", 1)[0]
    rows = dict(_ROW.match(line).groups() for line in section.splitlines() if _ROW.match(line))
    assert len(rows) >= 10, f"the keys table has only {len(rows)} rows"
    return rows


def queue_entry_points() -> set[str]:
    """Dotted names of the wfl functions that call autoparallelize or choose a fit's queue."""
    found = set()
    for path in SRC.rglob("*.py"):
        if "autoparallelize" in path.relative_to(SRC).parts:
            continue  # the machinery itself, not an operation
        module = ".".join(path.relative_to(SRC.parent).with_suffix("").parts)
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if not isinstance(node, ast.FunctionDef):
                continue
            for call in ast.walk(node):
                if isinstance(call, ast.Call) and getattr(call.func, "id", None) in (
                    "autoparallelize",
                    "select_single_job_remote_info",
                ):
                    found.add(f"{module}.{node.name}")
    return found


def test_every_operation_that_can_queue_has_a_row():
    assert queue_entry_points() == set(readme_key_table())


def _cells(n: int = 2) -> list:
    cells = []
    for i in range(n):
        at = bulk("Cu", "fcc", a=3.61, cubic=True)
        at.rattle(stdev=0.02, seed=i)
        cells.append(at)
    return cells


def _fit_configs() -> list:
    configs = _cells(2)
    for at in configs:
        at.info["REF_energy"] = 0.0
        at.arrays["REF_forces"] = at.positions * 0.0
    return configs


_GAP_PARAMS = {
    "gap": [{"soap": True, "n_max": 4, "l_max": 2, "cutoff": 3.0, "n_sparse": 5}],
    "default_sigma": [0.01, 0.1, 0.0, 0.0],
    "energy_parameter_name": "REF_energy",
    "force_parameter_name": "REF_forces",
}
_ACE_PARAMS = {"potential": {"elements": ["Cu"]}, "fit": {}}


def _call(operation: str, tmp_path: Path):
    """Call one operation with small inputs (it must not get far: see the module docstring)."""
    out = OutputSpec(str(tmp_path / "out.xyz"))
    calc = (EMT, [], {})
    if operation == "wfl.generate_configs.minim.run":
        from wfl.generate_configs.minim import run

        return run(ConfigSet(_cells()), out, calculator=calc)
    if operation == "wfl.generate.optimize.optimize":
        from wfl.generate.optimize import optimize

        return optimize(ConfigSet(_cells()), out, calculator=calc)
    if operation == "wfl.generate.md.md":
        from wfl.generate.md import md

        return md(ConfigSet(_cells()), out, calculator=calc, steps=2)
    if operation == "wfl.generate.buildcell.buildcell":
        from wfl.generate.buildcell import buildcell, create_input

        return buildcell(
            range(2), out, "buildcell", create_input(z=29, vol_per_atom=12.0, bond_lengths=2.5)
        )
    if operation == "wfl.calculators.generic.calculate":
        from wfl.calculators.generic import calculate

        return calculate(ConfigSet(_cells()), out, calculator=calc)
    if operation == "wfl.map.map":
        from wfl.map import map as wfl_map

        return wfl_map(ConfigSet(_cells()), out, _identity)
    if operation == "wfl.select.simple.by_bool_func":
        from wfl.select.simple import by_bool_func

        return by_bool_func(ConfigSet(_cells()), out, _identity)
    if operation == "wfl.select.simple.by_index":
        from wfl.select.simple import by_index

        return by_index(ConfigSet(_cells()), out, [1])
    if operation.startswith("wfl.generate.supercells."):
        from wfl.generate import supercells

        make = getattr(supercells, operation.rsplit(".", 1)[1])
        if make is supercells.surface:
            return make(ConfigSet(_cells()), out, 20, 5.0, 8.0, simple_cut=True)
        return make(ConfigSet(_cells()), out, 20, primitive=False)
    if operation == "wfl.fit.gap.simple.run_gap_fit":
        from wfl.fit.gap.simple import run_gap_fit

        params = dict(_GAP_PARAMS, gp_file=str(tmp_path / "gap.xml"))
        return run_gap_fit(_fit_configs(), params, None, gap_fit_command="false")
    if operation == "wfl.fit.gap.multistage.fit":
        from wfl.fit.gap.multistage import fit

        params = {
            "gap_params": {"default_sigma": [0.01, 0.1, 0.0, 0.0]},
            "stages": [{"descriptors": [{"distance_2b": True, "cutoff": 3.0, "n_sparse": 5}]}],
        }
        return fit(_fit_configs(), "gap", params, run_dir=tmp_path, gap_fit_command="false")
    if operation == "wfl.fit.ace.fit":
        from wfl.fit.ace import fit

        return fit(_fit_configs(), "ace", _ACE_PARAMS, fit_dir=tmp_path, pacemaker_command="false")
    if operation == "wfl.fit.committee.fit_committee":
        from wfl.fit.committee import fit_committee

        return fit_committee(
            "gap", _fit_configs(), _GAP_PARAMS, 2, "com", fit_dir=tmp_path, command="false"
        )
    raise AssertionError(f"no test call for {operation}: add one to _call")


def _identity(atoms):
    return atoms


def _remote_info(**extra) -> dict:
    return {
        "sys_name": NO_SUCH_SYSTEM,
        "job_name": "keys",
        "resources": {"num_cores": 1, "max_time": "5m"},
        "partial_node": True,
        **extra,
    }


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for var in (
        "WFL_GAP_SIMPLE_FIT_REMOTEINFO",
        "WFL_GAP_MULTISTAGE_FIT_REMOTEINFO",
        "WFL_ACE_FIT_REMOTEINFO",
        "WFL_PYTEST_EXPYRE_INFO",
        "EXPYRE_SYS",
    ):
        monkeypatch.delenv(var, raising=False)
    # a selection of its own, so the deliberately unmatched keys of these tests are not
    # reported as unused when the test process exits
    from wfl.autoparallelize import select

    monkeypatch.setattr(select, "_cache", {})
    monkeypatch.setenv("EXPYRE_ROOT", str(tmp_path / "_expyre"))
    (tmp_path / "_expyre").mkdir()
    monkeypatch.chdir(tmp_path)


AUTOPARALLELIZED = [
    op
    for op in readme_key_table()
    if not op.startswith("wfl.fit.")  # the fits choose their queue without autoparallelize
]


@pytest.mark.parametrize("operation", AUTOPARALLELIZED)
def test_key_in_the_table_is_the_one_the_code_reports(operation, tmp_path, monkeypatch, clean_env):
    monkeypatch.setenv("WFL_EXPYRE_INFO", json.dumps({"no_call_has_this_label": _remote_info()}))
    monkeypatch.setenv("WFL_EXPYRE_INFO_STRICT", "1")
    with pytest.raises(ValueError, match="no key matches this call") as error:
        _call(operation, tmp_path)
    reported = re.search(r"the call's keys are '([^']+)'", str(error.value)).group(1)
    assert readme_key_table()[operation] == reported


@pytest.mark.parametrize("operation", list(readme_key_table()))
def test_key_in_the_table_selects_the_operation(operation, tmp_path, monkeypatch, clean_env):
    key = readme_key_table()[operation]
    monkeypatch.setenv("WFL_EXPYRE_INFO", json.dumps({key: _remote_info()}))
    monkeypatch.setenv("WFL_EXPYRE_INFO_STRICT", "1")
    with pytest.raises(Exception, match=NO_SUCH_SYSTEM):  # the preflight's error: selected
        _call(operation, tmp_path)
    assert not (tmp_path / "out.xyz").exists()
