"""Shared fixtures for the fit tests (helpers and data live in fit_testutil.py)."""

import shutil

import pytest
from fit_testutil import FIT_ENV_VARS, expyre_test_config, make_cu_configs, remote_systems


@pytest.fixture(scope="session")
def _cu_configs_once():
    return make_cu_configs()


@pytest.fixture
def cu_configs(_cu_configs_once):
    """30 EMT-labelled Cu configurations (fresh copies for each test)."""
    return [at.copy() for at in _cu_configs_once]


@pytest.fixture(autouse=True)
def _no_inherited_fit_env(monkeypatch):
    """Fit selection must come from each test, never from the developer's shell."""
    for name in FIT_ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def gap_fit_available():
    from wfl.fit.gap.simple import find_gap_fit_command

    try:
        find_gap_fit_command()
    except FileNotFoundError:
        pytest.skip("gap_fit not installed (bash ci/install-fitters.sh)")
    pytest.importorskip("quippy")


@pytest.fixture
def local_queue(make_local_project):
    """An expyre project in tmp_path whose ``local`` system runs up to 4 one-core jobs at once.

    Returns a function ``remote_info(job_name) -> dict`` for fit calls.
    """
    make_local_project(cores=4)

    def remote_info(job_name, **extra):
        info = {
            "sys_name": "local",
            "job_name": job_name,
            "resources": {"num_cores": 1, "max_time": "20m"},
            "partial_node": True,
            "timeout": 900,
            "env_vars": ["OMP_NUM_THREADS=1"],
        }
        info.update(extra)
        return info

    return remote_info


@pytest.fixture(params=remote_systems() or [None])
def remote_queue(request, tmp_path, monkeypatch):
    """For ``remote`` tests: a function ``remote_info(job_name)`` on each configured system."""
    if request.param is None:
        pytest.skip("no test system matches EXPYRE_PYTEST_SYSTEMS in the test config.json")
    root = tmp_path / "_expyre"
    root.mkdir()
    # the test systems' definitions, in this test's own project (jobs database in tmp_path)
    shutil.copy(expyre_test_config(), root / "config.json")
    monkeypatch.setenv("EXPYRE_ROOT", str(root))

    def remote_info(job_name, **extra):
        info = {
            "sys_name": request.param,
            "job_name": job_name,
            "resources": {"num_cores": 1, "max_time": "20m"},
            "partial_node": True,
            "timeout": 1800,
        }
        info.update(extra)
        return info

    return remote_info
