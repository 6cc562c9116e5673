"""Transports: run a command, copy a directory there, copy it back.

Only these three operations. ``LocalTransport`` runs on this machine; the ssh transport
(``expyre.ssh``) implements the same protocol over one multiplexed OpenSSH connection.
"""

from __future__ import annotations

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
