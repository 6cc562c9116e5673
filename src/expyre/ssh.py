"""ssh transport: run commands on a remote host and copy directories there and back.

OpenSSH and rsync are used through subprocess, never a Python ssh library, because users'
``~/.ssh/config`` (host aliases, ProxyJump, keys, ControlMaster for two-factor logins) is
only honoured by the real client.

One connection per host, not one per command: the first use starts a background master
(``ControlMaster``/``ControlPersist``) whose socket lives in a short private directory, and
every later ssh or rsync multiplexes over it, so a status poll costs a few milliseconds
instead of a full login. If the user's own ssh config already sets a ``ControlPath`` for the
host, that is respected and nothing of ours is added.

Quoting: a command is an argv list; each item is quoted with :func:`shlex.quote` before ssh
joins them for the remote (POSIX) login shell, so spaces, quotes, ``;`` and ``$(...)`` in
paths or values reach the program verbatim and execute nothing. rsync runs with
``--protect-args`` so remote paths are never split or expanded either.

Retries (``EXPYRE_RETRY="tries seconds"``, default 3 tries 5 s apart) apply to what is
safe to repeat: starting the master connection and rsync copies. A command run through
:meth:`SshTransport.run` is attempted once (the caller, :class:`expyre.system.System`,
decides what may be retried: resubmitting a job twice must never happen).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shlex
import socket
import subprocess
import tempfile
import threading
import time

from expyre.envvars import remote_shell_argv
from expyre.privatedir import NotPrivateError, private_dir
from expyre.transport import retry_policy

__all__ = ["SshError", "SshTransport"]

# A unix socket path is limited to 108 bytes, and ssh appends ".XXXXXXXXXXXXXXXX" (17 chars)
# while creating the master's socket: keep whole control paths under this many characters.
_MAX_CONTROL_PATH = 90
# rsync exit codes caused by the connection rather than by the files (worth retrying)
_RSYNC_TRANSIENT = {10, 12, 30, 35, 255}
_SSH_CONNECTION_FAILED = 255


class SshError(RuntimeError):
    """ssh or rsync could not reach the host, or a copy failed, after all retries."""


class SshTransport:
    """Transport to one remote host over one multiplexed OpenSSH connection.

    Parameters
    ----------
    host : str
        ``[user@]host`` or a ``~/.ssh/config`` alias.
    remsh_cmd : str, optional
        The ssh command with any options (e.g. ``"ssh -p 2222"``), split like a shell would.
        Default: ``$EXPYRE_RSH`` or ``ssh``.
    control_dir : str, optional
        Directory for the master connection's socket (created mode 0700). Ignored when the
        resulting path would be too long for a unix socket (or contains whitespace); the
        default is a private directory under the system temporary directory.
    persist_s : int
        Seconds the master connection stays up after its last use.
    connect_timeout_s : int
        ssh ``ConnectTimeout`` in seconds.

    Raises
    ------
    ValueError
        For an empty host or one starting with ``-``.
    """

    def __init__(
        self,
        host: str,
        remsh_cmd: str | None = None,
        control_dir: str | os.PathLike | None = None,
        persist_s: int = 600,
        connect_timeout_s: int = 30,
    ) -> None:
        if not host or host.startswith("-") or any(c.isspace() for c in host):
            raise ValueError(
                f"ssh host {host!r} is not a host name; give '[user@]host' or an alias "
                "from ~/.ssh/config in the system's 'host'"
            )
        self.host = host
        self.where = host
        self.remsh_argv = remote_shell_argv(remsh_cmd)
        self.persist_s = int(persist_s)
        self.connect_timeout_s = int(connect_timeout_s)
        self._lock = threading.Lock()
        self._master_ok = False
        self._user_mux = self._user_has_control_path()
        self.control_path = None if self._user_mux else self._choose_control_path(control_dir)

    # ------------------------------------------------------------------ options

    def _user_has_control_path(self) -> bool:
        """True if the user's ssh config already multiplexes this host (ssh -G is offline)."""
        try:
            proc = subprocess.run(
                [*self.remsh_argv, "-G", self.host],
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            return False
        for line in proc.stdout.splitlines():
            key, _, value = line.partition(" ")
            if key.lower() == "controlpath" and value.strip().lower() not in ("", "none"):
                return True
        return False

    def _choose_control_path(self, control_dir: str | os.PathLike | None) -> str:
        # the name depends on host and ssh command (a different port/config is another link)
        digest = hashlib.sha1("\0".join([self.host, *self.remsh_argv]).encode()).hexdigest()
        name = f"xpr-{digest[:16]}"
        if control_dir is not None:
            path = os.path.join(os.fspath(control_dir), name)
            if len(path) <= _MAX_CONTROL_PATH and not any(c.isspace() for c in path):
                _private_dir(os.fspath(control_dir))
                return path
        base = tempfile.gettempdir()
        if len(base) > 40 or any(c.isspace() for c in base):
            base = "/tmp"
        private = os.path.join(base, f"expyre-ssh-{os.getuid()}")
        _private_dir(private)
        return os.path.join(private, name)

    def ssh_argv(self) -> list[str]:
        """The ssh command with our options, ending before the host name."""
        argv = [
            *self.remsh_argv,
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={self.connect_timeout_s}",
            "-o",
            "ServerAliveInterval=30",
        ]
        if self.control_path is not None:
            argv += ["-o", "ControlMaster=no", "-o", f"ControlPath={self.control_path}"]
        return argv

    # ------------------------------------------------------------------ master connection

    def _master_alive(self) -> bool:
        if self.control_path is None or not os.path.exists(self.control_path):
            return False
        proc = subprocess.run(
            [*self.ssh_argv(), "-O", "check", self.host],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=30,
        )
        return proc.returncode == 0

    def _ensure_master(self) -> None:
        """Start the shared connection once (retried); later calls cost one stat().

        The master removes its socket when it exits (ControlPersist expired, ``close()``),
        so a missing socket means: start a new one rather than log in for every command.
        """
        if self.control_path is None:
            return
        if self._master_ok and os.path.exists(self.control_path):
            return
        with self._lock:
            if self._master_ok and os.path.exists(self.control_path):
                return
            if not self._master_alive():
                self._start_master()
            self._master_ok = True

    def _remove_stale_socket(self) -> None:
        """Delete a control socket that no master listens on any more.

        A master killed with SIGKILL (or a reboot without a /tmp wipe) leaves its socket
        behind; ssh then refuses to bind a new master there ("ControlSocket ... already
        exists, disabling multiplexing") and every later command would log in afresh. Only
        a refused connection counts as stale: a live or starting master is never touched.
        """
        path = self.control_path
        if path is None or not os.path.exists(path):
            return
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(5)
        try:
            probe.connect(path)
        except (ConnectionRefusedError, FileNotFoundError):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        except OSError:
            pass  # not ours to judge (permissions, timeout): ssh will report it
        finally:
            probe.close()

    def _start_master(self) -> None:
        tries, wait = retry_policy()
        argv = [
            *self.remsh_argv,
            "-o",
            "BatchMode=yes",
            "-o",
            f"ConnectTimeout={self.connect_timeout_s}",
            "-o",
            "ServerAliveInterval=30",
            "-o",
            "ControlMaster=yes",
            "-o",
            f"ControlPath={self.control_path}",
            "-o",
            f"ControlPersist={self.persist_s}",
            "-N",
            "-f",
            self.host,
        ]
        last = ""
        for attempt in range(1, tries + 1):
            self._remove_stale_socket()
            # -f: ssh forks into the background once logged in. Its stderr goes to a file,
            # not a pipe: a pipe held open by the background master would never reach EOF.
            with tempfile.TemporaryFile(mode="w+") as err:
                try:
                    rc = subprocess.run(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL,
                        stderr=err,
                        timeout=self.connect_timeout_s + 30,
                    ).returncode
                except subprocess.TimeoutExpired:
                    rc = -1
                err.seek(0)
                last = err.read().strip()
            if rc == 0 and self._master_alive():
                return
            if attempt < tries:
                time.sleep(wait)
        raise SshError(
            f"cannot open an ssh connection to {self.host!r} with {shlex.join(self.remsh_argv)} "
            f"after {tries} tries: {last or 'no message'}; check that "
            f"'{shlex.join(self.remsh_argv)} {self.host} true' works without a password prompt "
            "(keys or an agent; BatchMode is on)"
        )

    def close(self) -> None:
        """Stop our master connection now instead of after ``persist_s`` (harmless if none)."""
        if self.control_path is None:
            return
        with self._lock:
            self._master_ok = False
            if os.path.exists(self.control_path):
                subprocess.run(
                    [*self.ssh_argv(), "-O", "exit", self.host],
                    capture_output=True,
                    stdin=subprocess.DEVNULL,
                    timeout=30,
                )
                # the master unlinks its socket just after answering; wait for that so the
                # next use starts a fresh master instead of talking to a dying one
                deadline = time.monotonic() + 5
                while os.path.exists(self.control_path) and time.monotonic() < deadline:
                    time.sleep(0.05)

    # ------------------------------------------------------------------ Transport protocol

    def run(
        self, argv: list[str], *, cwd: str | None = None, timeout: float | None = None
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` on the host (each item quoted, so nothing in it is shell syntax).

        Parameters
        ----------
        argv : list of str
            Program and arguments.
        cwd : str, optional
            Remote directory to run in.
        timeout : float, optional
            Seconds before the local ssh client is killed.

        Returns
        -------
        subprocess.CompletedProcess
            With the remote command's exit code and text output; 255 means ssh failed.
        """
        if not argv:
            raise ValueError("cannot run an empty command over ssh")
        self._ensure_master()
        command = shlex.join([str(a) for a in argv])
        if cwd is not None:
            command = f"cd {shlex.quote(str(cwd))} && {command}"
        proc = subprocess.run(
            [*self.ssh_argv(), self.host, command],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        )
        if proc.returncode == _SSH_CONNECTION_FAILED:
            self._master_ok = False  # check (and restart) the master before the next command
        return proc

    def put_dir(self, local_dir: str, remote_dir: str) -> None:
        """Copy the contents of ``local_dir`` into ``remote_dir`` (created, mode 0700).

        Raises
        ------
        SshError
            If the copy fails after all retries.
        """
        self._ensure_master()
        mkdir = self.run(["sh", "-c", 'umask 077 && mkdir -p -- "$1"', "sh", remote_dir])
        if mkdir.returncode != 0:
            raise SshError(
                f"cannot create {remote_dir!r} on {self.host}: {mkdir.stderr.strip()}; "
                "check the system's 'rundir' in config.json"
            )
        # --chmod: whatever the local modes, nothing of a job is readable by others there
        self._rsync(
            ["--chmod=Dgo-rwx,Fgo-rwx", _slash(local_dir), f"{self.host}:{_slash(remote_dir)}"],
            f"copy {local_dir} to {self.host}:{remote_dir}",
        )

    def get_dir(self, remote_dir: str, local_dir: str) -> None:
        """Copy the contents of ``remote_dir`` back into ``local_dir`` (created if needed).

        Raises
        ------
        SshError
            If the copy fails after all retries.
        """
        self._ensure_master()
        os.makedirs(local_dir, exist_ok=True)
        self._rsync(
            [f"{self.host}:{_slash(remote_dir)}", _slash(local_dir)],
            f"copy {self.host}:{remote_dir} to {local_dir}",
        )

    def _rsync(self, args: list[str], what: str) -> None:
        argv = ["rsync", "-a", "--protect-args", "-e", shlex.join(self.ssh_argv()), *args]
        tries, wait = retry_policy()
        proc = None
        for attempt in range(1, tries + 1):
            proc = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL)
            if proc.returncode == 0:
                return
            if proc.returncode not in _RSYNC_TRANSIENT:
                break
            self._master_ok = False
            if attempt < tries:
                time.sleep(wait)
                self._ensure_master()
        assert proc is not None
        raise SshError(
            f"could not {what}: rsync exit code {proc.returncode}: {proc.stderr.strip()[-1000:]}"
        )


def _slash(path: str) -> str:
    """``path/``: rsync copies a directory's contents, not the directory itself."""
    return path.rstrip("/") + "/"


def _private_dir(path: str) -> None:
    """Our control-socket directory, private to this user (else :class:`SshError`)."""
    try:
        private_dir(path, "ssh control directory")
    except NotPrivateError as err:
        raise SshError(str(err)) from None
