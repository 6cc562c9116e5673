"""Which wfl made a file: the version string recorded with results."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

__all__ = ["get_wfl_version"]


def get_wfl_version() -> str:
    """``"git <describe>"`` when wfl runs from a git checkout, else the installed version.

    A checkout's commit (with ``-dirty`` for local changes) says more than the version
    number, which does not change between commits.
    """
    import wfl

    git = shutil.which("git")
    if git is not None:
        try:
            described = subprocess.run(
                [git, "describe", "--always", "--tags", "--dirty"],
                cwd=Path(__file__).resolve().parent,
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            described = ""
        if described:
            return f"git {described}"
    return str(wfl.__version__)
