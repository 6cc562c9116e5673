"""Fixtures for expyre tests: an isolated project scope per test (never $HOME, never the repo)."""

import pytest


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A fresh project: EXPYRE_ROOT and HOME inside tmp_path, cwd = tmp_path/work.

    Jobs run on the built-in ``local`` system unless a test writes a config.json.
    The died-grace is short so tests of killed jobs stay fast.
    """
    root = tmp_path / "_expyre"
    home = tmp_path / "home"
    work = tmp_path / "work"
    for d in (root, home, work):
        d.mkdir()
    monkeypatch.setenv("EXPYRE_ROOT", str(root))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("EXPYRE_DIED_GRACE", "2")
    monkeypatch.setenv("EXPYRE_RETRY", "2 0.5")
    monkeypatch.delenv("EXPYRE_SYS", raising=False)
    monkeypatch.chdir(work)
    return root
