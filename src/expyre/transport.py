"""Transports: run a command, copy a directory there, copy it back.

Only these three operations. ``LocalTransport`` runs on this machine; the ssh transport
(``expyre.ssh``) implements the same protocol over one multiplexed OpenSSH connection.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
from typing import Protocol


class Transport(Protocol):
    """What a :class:`expyre.system.System` needs to reach the machine where jobs run."""

    #: human-readable place, e.g. ``"localhost"`` or ``"user@cluster"``
    where: str

    def run(
        self, argv: list[str], *, cwd: str | None = None, timeout: float | None = None
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` (no shell interpretation of its items) and capture text output."""

    def put_dir(self, local_dir: str, remote_dir: str) -> None:
        """Copy the contents of ``local_dir`` into ``remote_dir`` (created mode 0700)."""

    def get_dir(self, remote_dir: str, local_dir: str) -> None:
        """Copy the contents of ``remote_dir`` back into ``local_dir``."""


class LocalTransport:
    """Transport for ``host: null``: commands run here, copies are plain file copies."""

    where = "localhost"

    def run(
        self, argv: list[str], *, cwd: str | None = None, timeout: float | None = None
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` here without a shell; stdout/stderr captured as text."""
        return subprocess.run(
            argv,
            cwd=cwd,
            timeout=timeout,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    def put_dir(self, local_dir: str, remote_dir: str) -> None:
        """Copy ``local_dir``'s contents into ``remote_dir`` (a no-op if they are the same)."""
        _copy_contents(local_dir, remote_dir)

    def get_dir(self, remote_dir: str, local_dir: str) -> None:
        """Copy ``remote_dir``'s contents back into ``local_dir`` (a no-op if the same)."""
        _copy_contents(remote_dir, local_dir)


def _copy_contents(src: str, dst: str) -> None:
    if os.path.realpath(src) == os.path.realpath(dst):
        return
    os.makedirs(dst, mode=0o700, exist_ok=True)
    shutil.copytree(src, dst, dirs_exist_ok=True, symlinks=True)


def retry_policy() -> tuple[int, float]:
    """Tries and seconds between them, from ``EXPYRE_RETRY="tries seconds"`` (default 3, 5 s).

    Raises
    ------
    expyre.envvars.EnvVarError
        If ``EXPYRE_RETRY`` is not a number of tries and a number of seconds.
    """
    from expyre.envvars import EnvVarError

    text = os.environ.get("EXPYRE_RETRY", "").strip() or "3 5"
    try:
        tries_text, wait_text = text.split()
        tries, wait = int(tries_text), float(wait_text)
    except ValueError:
        tries, wait = 0, math.nan
    if tries < 1 or not math.isfinite(wait) or wait < 0:
        raise EnvVarError(
            f"environment variable EXPYRE_RETRY={text!r} is not 'TRIES SECONDS' (a whole "
            "number of tries, at least 1, and the seconds between them); set it like "
            "EXPYRE_RETRY='3 5', or unset it for that default"
        )
    return tries, wait
