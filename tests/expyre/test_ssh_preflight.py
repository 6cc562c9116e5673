"""Preflight check: can a system's python (after its ``commands``) run expyre jobs?

Runs real interpreters on this machine through a local System; the same code runs over ssh
for remote hosts (see tests/remote).
"""

import shutil
import sys
from pathlib import Path

import pytest

import wfl  # noqa: F401 - registers itself as a package every system must have
from expyre.clients import register_client_package, remotely_checked_packages
from expyre.config import PartitionConfig, SystemConfig
from expyre.preflight import PreflightError, check_system, probe_versions
from expyre.system import System


def make_system(tmp_path, name, python_cmd, commands=()):
    config = SystemConfig(
        name=name,
        host=None,
        scheduler="local",
        partitions={"cpu": PartitionConfig(name="cpu", num_cores=1)},
        commands=list(commands),
        python_cmd=python_cmd,
        source=str(tmp_path / "config.json"),
    )
    return System(config, tmp_path)


def test_driver_python_passes_and_is_checked_once(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPYRE_RETRY", "1 0")
    system = make_system(tmp_path, "same_python", sys.executable)
    report = check_system(system)
    assert set(report["modules"]) == {"expyre", "wfl"}
    assert report["modules"]["wfl"]["version"] == probe_versions()["modules"]["wfl"]["version"]
    calls = []
    monkeypatch.setattr(system, "run", lambda *a, **k: calls.append(a))
    assert check_system(system) == report  # cached for this process: no second command
    assert calls == []


def test_missing_python_names_system_and_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPYRE_RETRY", "1 0")
    system = make_system(tmp_path, "no_python", "/nonexistent/python3")
    with pytest.raises(PreflightError) as err:
        check_system(system)
    text = str(err.value)
    assert "system 'no_python'" in text and "/nonexistent/python3" in text
    assert '"commands"' in text and "PYTHONPATH" in text


def test_python_without_the_packages_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPYRE_RETRY", "1 0")
    # -I: isolated mode ignores PYTHONPATH and user site; -S: no site-packages (no venv, no editable install)
    system = make_system(tmp_path, "bare_python", f"{sys.executable} -I -S")
    with pytest.raises(PreflightError, match=r"cannot import expyre \(ModuleNotFoundError"):
        check_system(system)


def test_version_mismatch_is_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPYRE_RETRY", "1 0")
    old = tmp_path / "old_install"
    for pkg in ("expyre", "wfl"):
        (old / pkg).mkdir(parents=True)
        (old / pkg / "__init__.py").write_text('__version__ = "0.0.1"\n')
    system = make_system(
        tmp_path, "old_code", sys.executable, commands=[f"export PYTHONPATH={old}"]
    )
    with pytest.raises(PreflightError, match=r"has expyre 0\.0\.1 .* but this driver has"):
        check_system(system)


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_commands_fix_the_problem(tmp_path, monkeypatch):
    """The per-machine hook users already know: a PYTHONPATH line in ``commands`` makes the check pass."""
    monkeypatch.setenv("EXPYRE_RETRY", "1 0")
    import expyre

    src = str(Path(expyre.__file__).resolve().parents[1])
    system = make_system(
        tmp_path,
        "with_commands",
        f"{sys.executable} -S",
        commands=[f"export PYTHONPATH={src}", "echo noise from a module system"],
    )
    report = check_system(system)
    assert "error" not in report["modules"]["expyre"]
    assert "error" not in report["modules"]["wfl"]


def test_a_registered_client_package_is_required_on_the_system(tmp_path, monkeypatch):
    """expyre checks what its clients register, not a name of its own choosing."""
    monkeypatch.setenv("EXPYRE_RETRY", "1 0")
    assert remotely_checked_packages()[:2] == ("expyre", "wfl")
    monkeypatch.setattr("expyre.clients._checked", ["expyre", "wfl"])
    register_client_package("no_such_client_pkg", fingerprint=False)
    system = make_system(tmp_path, "needs_client", sys.executable)
    with pytest.raises(PreflightError, match="cannot import no_such_client_pkg"):
        check_system(system)
    with pytest.raises(ValueError, match="not a top-level package name"):
        register_client_package("wfl.autoparallelize")
