"""Every public name of wfl 0.3.5 / expyre-wfl 0.1.6 exists here, or is a listed gap.

``reference_api.json`` is the reference's public API as ``api_surface.py`` prints it (its
modules, the classes and functions each defines, their public members and parameter
names). Each one must import here with those parameters, unless it is in ``GAPS``: the
deliberate differences, each explained in the README's "Differences from wfl 0.3.5"
("What is not there"). With the reference installed (``WFL_REFERENCE_VENV`` or
``.venv-ref``), the record is also checked against it.
Re-record: ``.venv-ref/bin/python tests/compat/api_surface.py > tests/compat/reference_api.json``.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import os
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
RECORDED = json.loads((HERE / "reference_api.json").read_text())

# What is not here on purpose (prefix of "module", "module.name" or "module.name.member",
# or "module.name(param)") -> the reason, as the README says it.
_OUT_OF_SCOPE = "wfl 0.3.5's other operations and tools are outside this project"
_INTERNALS = "0.1.6's / 0.3.5's internals for running commands, pools and queues"
GAPS = {
    "wfl.select.by_descriptor": _OUT_OF_SCOPE,
    "wfl.select.convex_hull": _OUT_OF_SCOPE,
    "wfl.select.flat_histogram": _OUT_OF_SCOPE,
    "wfl.select.selection_space": _OUT_OF_SCOPE,
    "wfl.descriptors": _OUT_OF_SCOPE,
    "wfl.descriptor_heuristics": _OUT_OF_SCOPE,
    "wfl.cli": _OUT_OF_SCOPE,
    "wfl.fit.mace": _OUT_OF_SCOPE,
    "wfl.fit.modify_database": _OUT_OF_SCOPE,
    "wfl.fit.utils": _OUT_OF_SCOPE,
    "wfl.fit.ace": "wfl.fit.ace runs pacemaker, not ACE1.jl",
    "wfl.calculators.aims": _OUT_OF_SCOPE,
    "wfl.calculators.castep": _OUT_OF_SCOPE,
    "wfl.calculators.orca": _OUT_OF_SCOPE,
    "wfl.calculators.mopac": _OUT_OF_SCOPE,
    "wfl.calculators.committee": _OUT_OF_SCOPE,
    "wfl.calculators.kpts": _OUT_OF_SCOPE,
    "wfl.calculators.wfl_fileio_calculator": _OUT_OF_SCOPE,
    "wfl.calculators.espresso.Espresso": "calculator internals (setup/clean of run dirs)",
    "wfl.calculators.vasp.Vasp": "calculator internals (setup/clean of run dirs)",
    "wfl.calculators.utils.clean_rundir": "calculator internals (setup/clean of run dirs)",
    "wfl.generate.minimahopping": _OUT_OF_SCOPE,
    "wfl.generate.neb": _OUT_OF_SCOPE,
    "wfl.generate.normal_modes": _OUT_OF_SCOPE,
    "wfl.generate.phonopy": _OUT_OF_SCOPE,
    "wfl.generate.smiles": _OUT_OF_SCOPE,
    "wfl.generate.md.abort": _OUT_OF_SCOPE,
    "wfl.generate.md.abort_base": _OUT_OF_SCOPE,
    "wfl.generate.md.utils": _OUT_OF_SCOPE,
    "wfl.generate.optimize.subselect_from_traj": "optimize's trajectory selection is its own",
    "wfl.utils.convex_hull": _OUT_OF_SCOPE,
    "wfl.utils.gap_xml_tools": _OUT_OF_SCOPE,
    "wfl.utils.julia": _OUT_OF_SCOPE,
    "wfl.utils.logging": _OUT_OF_SCOPE,
    "wfl.utils.ndim_neighbor_list": _OUT_OF_SCOPE,
    "wfl.utils.params": _OUT_OF_SCOPE,
    "wfl.utils.pressure": _OUT_OF_SCOPE,
    "wfl.utils.quip_cli_strings": _OUT_OF_SCOPE,
    "wfl.utils.replace_eval_in_strs": _OUT_OF_SCOPE,
    "wfl.utils.vol_composition_space": _OUT_OF_SCOPE,
    "wfl.__version__": "a module in 0.3.5; here wfl.__version__ is the version string",
    "wfl.autoparallelize.mpipool_support": _INTERNALS,
    "wfl.autoparallelize.utils": _INTERNALS,
    "wfl.autoparallelize.pool.do_in_pool": _INTERNALS,
    "wfl.autoparallelize.remote.do_remotely": _INTERNALS,
    "expyre.subprocess": _INTERNALS,
    "expyre.util": _INTERNALS,
    "expyre.cli.cli": "xpr is a click group of its own modules (same commands)",
    "expyre.config.update_dict_leaves": _INTERNALS,
    "expyre.system.System.__init__": _INTERNALS,
    "expyre.system.System.run": _INTERNALS,
    "expyre.system.System.submit": _INTERNALS,
    "expyre.system.System.clean_rundir": _INTERNALS,
    "expyre.system.System.get_remotes": _INTERNALS,
    "expyre.system.System.initialize_remote_rundir": _INTERNALS,
    "expyre.schedulers.base.Scheduler": "0.1.6's command-running methods are on the "
    "0.1.6-named classes (Slurm, SGE, PBS, Local), not on the pure Scheduler base",
    "expyre.jobsdb.JobsDB": "this project's class; 0.1.6's methods are on expyre.config.db",
    "expyre.func.ExPyRe.__init__(_from_db_info)": "private argument",
    "wfl.configset.ConfigSet.__init__(_": "private arguments",
}


def _covers(prefix: str, path: str) -> bool:
    """Whether a GAPS entry covers a path: itself, or what is inside it."""
    if path == prefix:
        return True
    return path.startswith(prefix) and (prefix[-1] in "(_" or path[len(prefix)] in ".(")


def _gap(path: str) -> str | None:
    return next((reason for prefix, reason in GAPS.items() if _covers(prefix, path)), None)


def _missing_params(recorded: list[str] | None, obj) -> list[str]:
    if not recorded:
        return []
    if recorded == ["args", "kwargs"]:
        # the reference's pass-through wrapper ``f(*args, **kwargs)`` of an operation: ours
        # shows the operation's parameters by name instead (tested in test_operation_signatures)
        return []
    try:
        params = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return []
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return []  # takes any keyword (e.g. passes them on)
    if [p for p in recorded if p != "self"] == ["kwargs"] and any(
        p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values()
    ):
        # the reference took ``**kwargs`` and checked the names itself (AutoparaInfo);
        # ours names them in its signature. Which names is not in the record: the class's
        # own tests check that every keyword the reference accepted is accepted here.
        return []
    return [p for p in recorded if p not in params]


@functools.cache
def _differences() -> tuple[str, ...]:
    """Every recorded name, member or parameter missing here, as a dotted path."""
    missing = []
    for module_name, names in sorted(RECORDED.items()):
        if "__import_error__" in names:
            continue  # the reference could not import it either (optional dependency)
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(module_name)
            continue
        for name, entry in sorted(names.items()):
            path = f"{module_name}.{name}"
            if not hasattr(module, name):
                missing.append(path)
                continue
            obj = getattr(module, name)
            if entry["kind"] == "function":
                missing += [f"{path}({p})" for p in _missing_params(entry["params"], obj)]
                continue
            for member, params in sorted(entry["members"].items()):
                if not hasattr(obj, member):
                    missing.append(f"{path}.{member}")
                else:
                    missing += [
                        f"{path}.{member}({p})"
                        for p in _missing_params(params, getattr(obj, member))
                    ]
    return tuple(missing)


def test_every_reference_name_exists_or_is_a_documented_gap():
    unexplained = [path for path in _differences() if _gap(path) is None]
    assert unexplained == [], (
        "names of wfl 0.3.5 / expyre-wfl 0.1.6 missing here and not listed in GAPS (add "
        f"them, or list and explain them in the README): {unexplained}"
    )


def test_every_gap_is_still_a_gap():
    # a gap that was closed must leave the list, so the list stays what is missing
    differences = _differences()
    used = {prefix for d in differences for prefix in GAPS if _covers(prefix, d)}
    closed = sorted(set(GAPS) - used)
    assert closed == [], f"no longer missing, drop from GAPS: {closed}"


def test_the_gaps_are_explained_in_the_readme():
    readme = (HERE.parents[1] / "README.md").read_text()
    assert "What is not there" in readme
    for top in ("wfl.select", "wfl.descriptors", "expyre.subprocess", "do_in_pool"):
        assert top in readme, top


@pytest.mark.slow  # imports all of the reference's wfl (which is pinned: it cannot drift)
def test_record_matches_the_installed_reference(tmp_path):
    venv = Path(os.environ.get("WFL_REFERENCE_VENV") or HERE.parents[1] / ".venv-ref")
    python = venv / "bin" / "python"
    if not python.exists():
        if os.environ.get("WFL_REFERENCE_VENV"):
            pytest.fail(f"WFL_REFERENCE_VENV is set but {python} does not exist")
        pytest.skip(f"reference not installed at {venv} (run ci/setup-reference.sh)")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path)}
    proc = subprocess.run(
        [str(python), str(HERE / "api_surface.py")],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == RECORDED, "re-record reference_api.json (module docstring)"
