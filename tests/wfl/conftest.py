"""Fixtures shared by wfl tests that run queued jobs on the embedded local queue."""

import json

import pytest


@pytest.fixture
def make_local_project(tmp_path, monkeypatch):
    """Factory: an expyre project in ``tmp_path`` whose ``local`` system has ``cores`` cores.

    Sets ``EXPYRE_ROOT`` (and a private ``HOME``), clears the variables that would select
    other systems or calls, changes into ``tmp_path`` and returns the project root.
    """

    def make(cores: int = 2, died_grace_s: float = 5):
        root = tmp_path / "_expyre"
        root.mkdir(exist_ok=True)
        partition = {"num_cores": cores, "max_time": None, "max_mem": None}
        config = {
            "systems": {
                "local": {"host": None, "scheduler": "local", "partitions": {"local": partition}}
            }
        }
        (root / "config.json").write_text(json.dumps(config))
        (tmp_path / "home").mkdir(exist_ok=True)
        monkeypatch.setenv("EXPYRE_ROOT", str(root))
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        monkeypatch.setenv("EXPYRE_DIED_GRACE", str(died_grace_s))
        for var in ("WFL_EXPYRE_INFO", "EXPYRE_SYS", "WFL_NUM_PYTHON_SUBPROCESSES"):
            monkeypatch.delenv(var, raising=False)
        monkeypatch.chdir(tmp_path)
        return root

    return make
