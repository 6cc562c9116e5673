"""Systems for ``--runremote`` tests: every system of the test config, filtered by regex.

The config is ``$EXPYRE_PYTEST_CONFIG_DIR/config.json`` (or that variable naming the file
itself) if set, else ``$HOME/.expyre/config.json`` as users' test instructions expect; ``ci/write-test-config.sh``
writes the CI's systems. ``EXPYRE_PYTEST_SYSTEMS``
is a regular expression searched in each system name (e.g. ``'^(slurm|sge)$'``).

A test asks for the ``sys_name`` fixture to be run once per selected system, and for
``remote_project`` to get an isolated project (EXPYRE_ROOT, HOME, cwd under ``tmp_path``, so
``--basetemp`` on a shared filesystem is honoured) whose config.json holds that one system.
"""

import contextlib
import json
import os
import re
from pathlib import Path

import pytest

from expyre.func import jobs_db
from expyre.jobsdb import LIVE_STATES
from expyre.system import get_system


def _config_path() -> Path:
    custom = os.environ.get("EXPYRE_PYTEST_CONFIG_DIR")
    if custom:
        return Path(custom) / "config.json" if Path(custom).is_dir() else Path(custom)
    return Path(os.environ.get("HOME") or os.path.expanduser("~")) / ".expyre" / "config.json"


_CONFIG_PATH = _config_path()  # read before any test changes HOME


def configured_systems() -> dict:
    """{name: system dict} of the test config, filtered by ``EXPYRE_PYTEST_SYSTEMS``."""
    try:
        systems = json.loads(_CONFIG_PATH.read_text()).get("systems", {})
    except (OSError, ValueError):
        return {}
    pattern = re.compile(os.environ.get("EXPYRE_PYTEST_SYSTEMS", ".*"))
    return {name: sys for name, sys in systems.items() if pattern.search(name)}


def pytest_generate_tests(metafunc):
    if "sys_name" in metafunc.fixturenames:
        names = sorted(configured_systems())
        params = names or [
            pytest.param(
                None, marks=pytest.mark.skip(reason=f"no systems selected in {_CONFIG_PATH}")
            )
        ]
        metafunc.parametrize("sys_name", params, ids=names or ["no-systems"])


@pytest.fixture
def selected_systems() -> dict:
    """All systems selected for this run, {name: config.json entry}."""
    return configured_systems()


@pytest.fixture
def sys_config(sys_name) -> dict:
    """The selected system's config.json entry."""
    return configured_systems()[sys_name]


@pytest.fixture
def remote_project(tmp_path, monkeypatch, sys_name, sys_config):
    """An isolated project whose config.json defines only ``sys_name`` (the default system)."""
    root, home, work = tmp_path / "_expyre", tmp_path / "home", tmp_path / "work"
    for d in (root, home, work):
        d.mkdir()
    (root / "config.json").write_text(
        json.dumps({"systems": {sys_name: sys_config}, "default_system": sys_name})
    )
    monkeypatch.setenv("EXPYRE_ROOT", str(root))
    monkeypatch.setenv("HOME", str(home))  # ssh itself reads ~/.ssh of the passwd entry
    monkeypatch.setenv("EXPYRE_DIED_GRACE", "10")
    monkeypatch.setenv("EXPYRE_RETRY", "3 2")
    monkeypatch.delenv("EXPYRE_SYS", raising=False)
    monkeypatch.chdir(work)
    yield root
    # a failed test must not leave sleeping or held jobs in a shared queue
    live = jobs_db().select(statuses=LIVE_STATES)
    ids = []
    for row in live:
        if row["remote_id"] and row["remote_id"].startswith("pack:"):  # packed: its allocations
            ids += row["remote_id"][len("pack:") :].split("+")
        elif row["remote_id"]:
            ids.append(row["remote_id"])
    if ids:
        # one call; scancel/qdel still cancel the live ids when some others already ended
        with contextlib.suppress(Exception):
            get_system(sys_name).cancel(ids)
