"""Environment variables with unusable values: one clear error naming the variable, the
value and the fix -- from a script and from ``xpr``, never a raw ``ValueError`` traceback."""

import subprocess
import sys

import pytest

from expyre.envvars import EnvVarError, env_flag, env_seconds

SCRIPT = """
from expyre.jobsdb import JobsDB
JobsDB("{db}").select()
print("opened")
"""

# every variable expyre reads as seconds or as on/off, with a value it must refuse
BAD_VALUES = [
    ("EXPYRE_DB_LOCK_PATIENCE", "abc"),
    ("EXPYRE_DB_LOCK_PATIENCE", "-5"),
    ("EXPYRE_DB_LOCK_PATIENCE", "0"),
    ("EXPYRE_DB_LOCK_PATIENCE", "nan"),
    ("EXPYRE_DIED_GRACE", "ten"),
    ("EXPYRE_DIED_GRACE", "-1"),
    ("EXPYRE_TIMING_VERBOSE", "maybe"),
]


def _python(code, env, cwd):
    return subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True
    )


@pytest.mark.parametrize("value", ["abc", "-5", "0", "inf"])
def test_bad_lock_patience_is_a_clear_error_when_the_database_is_opened(
    tmp_path, monkeypatch, value
):
    monkeypatch.setenv("EXPYRE_DB_LOCK_PATIENCE", value)
    import os

    done = _python(SCRIPT.format(db=tmp_path / "jobs.db"), dict(os.environ), tmp_path)
    assert done.returncode != 0
    assert "could not convert" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("expyre.envvars.EnvVarError: environment variable ")
    assert f"EXPYRE_DB_LOCK_PATIENCE={value!r}" in last and "unset it" in last


def test_importing_expyre_never_fails_on_a_bad_value(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPYRE_DB_LOCK_PATIENCE", "abc")
    import os

    done = _python(
        "import expyre.jobsdb, expyre.func, expyre.poll; print('ok')", dict(os.environ), tmp_path
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


@pytest.mark.parametrize("name,value", BAD_VALUES)
def test_xpr_reports_a_bad_value_in_one_line(tmp_path, monkeypatch, name, value):
    import os

    root = tmp_path / "_expyre"
    root.mkdir()
    from expyre.jobsdb import JobsDB

    JobsDB(root / "jobs.db").select()  # an existing project
    env = {**os.environ, "EXPYRE_ROOT": str(root), name: value}
    done = subprocess.run(
        [sys.executable, "-m", "expyre.cli", "sync"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.startswith("Error: environment variable ")
    assert f"{name}={value!r}" in done.stderr


def test_env_seconds_and_env_flag(monkeypatch):
    monkeypatch.setenv("X_SECONDS", " 2.5 ")
    assert env_seconds("X_SECONDS", 7) == 2.5
    monkeypatch.setenv("X_SECONDS", "")
    assert env_seconds("X_SECONDS", 7) == 7
    monkeypatch.setenv("X_SECONDS", "0")
    assert env_seconds("X_SECONDS", 7) == 0
    with pytest.raises(EnvVarError, match="more than 0"):
        env_seconds("X_SECONDS", 7, allow_zero=False)
    for word, on in [("1", True), ("Yes", True), ("0", False), ("off", False), ("", False)]:
        monkeypatch.setenv("X_FLAG", word)
        assert env_flag("X_FLAG") is on
    monkeypatch.setenv("X_FLAG", "2")
    with pytest.raises(EnvVarError, match=r"X_FLAG='2' is neither on nor off"):
        env_flag("X_FLAG")


def test_timing_trace_zero_means_off(monkeypatch, capsys):
    from expyre.system import _trace

    monkeypatch.setenv("EXPYRE_TIMING_VERBOSE", "0")
    _trace("hello")
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("EXPYRE_TIMING_VERBOSE", "1")
    _trace("hello")
    assert "expyre timing: hello" in capsys.readouterr().err
