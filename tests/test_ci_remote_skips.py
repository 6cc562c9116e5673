"""`make test` fails when a test marked remote is skipped (a live test that did not run).

Runs pytest on a small generated suite that uses this project's conftest: one remote test
skipped for a missing tool, one skipped as "not applicable:", one passing.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

SUITE = """
import pytest

pytestmark = pytest.mark.remote


def test_runs():
    assert True


def test_tool_missing():
    pytest.skip("sbatch not found")


def test_by_design():
    pytest.skip("not applicable: system is not reached over ssh")
"""


def _pytest(tmp_path, env_value):
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "pyproject.toml").write_text('[tool.pytest.ini_options]\nmarkers = ["remote"]\n')
    (tmp_path / "test_suite.py").write_text(SUITE)
    env = dict(os.environ)
    env.pop("EXPYRE_PYTEST_FAIL_ON_REMOTE_SKIPS", None)
    if env_value is not None:
        env["EXPYRE_PYTEST_FAIL_ON_REMOTE_SKIPS"] = env_value
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "--runremote", "-p", "no:cacheprovider", "."],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_skipped_remote_test_fails_the_ci_run(tmp_path):
    done = _pytest(tmp_path, "1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 test(s) marked remote were SKIPPED" in done.stderr
    assert "test_tool_missing: sbatch not found" in done.stderr
    assert "test_by_design" not in done.stderr  # "not applicable:" skips are by design


def test_outside_ci_a_skip_is_only_a_skip(tmp_path):
    done = _pytest(tmp_path, None)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 2 skipped" in done.stdout
