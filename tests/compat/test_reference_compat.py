"""Scripts written for wfl 0.3.5 / expyre-wfl 0.1.6 behave the same here.

The scenarios of ``scenarios.py`` (small user scripts using only the public API) run:

- through this project, always, compared with ``reference_results.json`` (what wfl 0.3.5
  gave for the same scenarios);
- through the reference itself when it is installed in a side venv (``$WFL_REFERENCE_VENV``,
  default ``.venv-ref`` in the repository; ``ci/setup-reference.sh`` creates it): live
  reference results must equal the recorded ones (so the record never goes stale) and ours.
  Without it, those tests are skipped with a reason saying how to install it, unless
  ``WFL_REFERENCE_VENV`` is set (as ``make test`` does): then a missing venv fails.

Scenarios where this project is deliberately different are listed in ``DIFFERENCES`` with
our expected result; each is described in the README's "Differences from wfl 0.3.5".
Re-record after changing scenarios:
``.venv-ref/bin/python tests/compat/scenarios.py /tmp/rec --golden > tests/compat/reference_results.json``
(with ``COMPAT_BUILDCELL`` set as in :func:`_run_scenarios`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# the scenarios run once per worker that gets a test of this module: keep them on one worker
pytestmark = pytest.mark.xdist_group("reference_compat")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SCENARIOS = HERE / "scenarios.py"
STANDIN_BUILDCELL = REPO / "tests" / "standins" / "buildcell_standin.py"
RECORDED = json.loads((HERE / "reference_results.json").read_text())
README = (REPO / "README.md").read_text()

# scenario -> (what we give instead, the README difference heading that explains why)
DIFFERENCES: dict[str, tuple[dict, str]] = {
    "cs_of_cs_then_atoms": (
        {"raises": "ValueError"},
        "A list of ConfigSets followed by Atoms",
    ),
    "os_all_written": (
        {
            "returns": {
                "before": False,
                "during": False,
                "after": True,
                "memory_closed": True,
                "two_files_one_stored": True,
                "files_on_disk": ["a.xyz", "b.xyz", "out.xyz"],
            }
        },
        "Every output file is written",
    ),
    "os_write_kwargs_format": ({"returns": 1}, "Binary output formats"),
    "cs_groups_nested_file": (
        {"returns": [[[0, " / 0"], [1, " / 1"]], [[2, " / 0"]]]},
        "`groups()` of a file",
    ),
    "map_rerun_changed_inputs": ({"raises": "ValueError"}, "Stale outputs are refused"),
    "os_memory_gap_groups": ({"returns": [1, 0]}, "In-memory outputs keep every config"),
    "select_by_index_repeated": (
        {"returns": [[0, " / 0"], [2, " / 2 / 0"], [2, " / 2 / 1"]]},
        "`by_index` with a repeated index",
    ),
    "select_by_index_rerun_other_indices": ({"raises": "ValueError"}, "Stale outputs are refused"),
    "supercells_antisite_one_species": ({"returns": []}, "cannot take the defect"),
    "supercells_surface_transformation": (
        {"returns": [[[0, 4, 0], [0, 0, 3], [3, 0, 0]]]},
        "The slab's `transformation`",
    ),
    "atoms_and_dimers_prepare_in_memory": (
        {"returns": [0.65, 1.575, 2.5]},
        "`prepare` into memory stores each dimer",
    ),
    "utils_atomization_energy_missing_element": (
        {"raises": "ValueError"},
        "`atomization_energy` with an element",
    ),
    "os_memory_same_location_twice": (
        {"returns": [[0, " / 0"], [1, " / 0"]]},
        "In-memory outputs keep every config",
    ),
}


def _reference_python() -> Path:
    venv = Path(os.environ.get("WFL_REFERENCE_VENV") or REPO / ".venv-ref")
    return venv / "bin" / "python"


def _run_scenarios(python: Path | str, workdir: Path) -> dict:
    """All scenarios through one interpreter, in a subprocess (each venv has its own wfl)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXPYRE_", "WFL_"))}
    env.pop("PYTHONPATH", None)  # never let one implementation see the other's sources
    env["HOME"] = str(workdir)  # no user config.json: both start from nothing
    env["COMPAT_BUILDCELL"] = json.dumps([str(python), str(STANDIN_BUILDCELL)])
    proc = subprocess.run(
        [str(python), str(SCENARIOS), str(workdir)],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert proc.returncode == 0, f"scenarios failed under {python}:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def ours(tmp_path_factory) -> dict:
    return _run_scenarios(sys.executable, tmp_path_factory.mktemp("ours"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    python = _reference_python()
    if not python.exists() and os.environ.get("WFL_REFERENCE_VENV"):
        # asked for explicitly (ci/run-tests.sh sets it): a missing reference is a failure
        pytest.fail(
            f"WFL_REFERENCE_VENV is set but {python} does not exist; run ci/setup-reference.sh"
        )
    if not python.exists():
        pytest.skip(
            f"reference wfl 0.3.5 / expyre-wfl 0.1.6 not installed at {python.parent.parent} "
            "(run ci/setup-reference.sh, or set WFL_REFERENCE_VENV to a venv that has them); "
            "ours is still checked against reference_results.json"
        )
    versions = subprocess.run(
        [str(python), "-c", "import importlib.metadata as m; "
         "print(m.version('wfl'), m.version('expyre-wfl'))"],
        capture_output=True, text=True, check=False, env={"PATH": os.environ.get("PATH", "")},
    )  # fmt: skip
    assert versions.stdout.split() == ["0.3.5", "0.1.6"], (
        f"{python} must have wfl==0.3.5 and expyre-wfl==0.1.6, has {versions.stdout!r} "
        f"{versions.stderr[-500:]}"
    )
    return _run_scenarios(python, tmp_path_factory.mktemp("reference"))


def _same_outcome(ref: dict, got: dict) -> bool:
    """Same return value, or an exception a handler for the reference's class catches."""
    if "returns" in ref:
        return "returns" in got and got["returns"] == ref["returns"]
    return ref["raises"] in got.get("raises_classes", [got.get("raises")])


SAME = sorted(set(RECORDED) - set(DIFFERENCES))


def test_every_scenario_is_recorded_and_classified(ours):
    assert set(ours) == set(RECORDED), "re-record reference_results.json (see module docstring)"
    assert set(DIFFERENCES) <= set(RECORDED)


@pytest.mark.parametrize("name", SAME)
def test_ours_behaves_as_recorded_reference(ours, name):
    got = ours[name]
    assert _same_outcome(RECORDED[name], got), (
        f"{name}: wfl 0.3.5 gave {RECORDED[name]}, we give "
        f"{ {k: v for k, v in got.items() if k != 'raises_classes'} }"
    )


@pytest.mark.parametrize("name", sorted(DIFFERENCES))
def test_documented_difference(ours, name):
    expected, heading = DIFFERENCES[name]
    got = ours[name]
    if "raises" in expected:
        assert expected["raises"] in got.get("raises_classes", []), got
    else:
        assert got.get("returns") == expected["returns"], got
    assert not _same_outcome(RECORDED[name], got), f"{name} is no longer different: drop it"
    assert heading in README, f"README 'Differences from wfl 0.3.5' must explain {heading!r}"


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_live_reference_matches_record(reference, name):
    assert _same_outcome(RECORDED[name], reference[name]), (
        f"{name}: the installed reference now gives {reference[name]}, recorded "
        f"{RECORDED[name]}; re-record (see module docstring)"
    )


@pytest.mark.parametrize("name", SAME)
def test_ours_behaves_as_live_reference(reference, ours, name):
    assert _same_outcome(reference[name], ours[name]), (reference[name], ours[name])
