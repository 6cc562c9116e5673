"""ssh transport against a real, private OpenSSH server started for these tests.

The server listens on a free 127.0.0.1 port with its own host key, authorised key, config
and log (all under a temporary directory), so counting its "Accepted publickey" log lines
counts exactly the connections this module opened. Skipped where sshd/rsync are missing.
"""

import os
import pwd
import shlex
import shutil
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from expyre.ssh import SshError, SshTransport

SSHD = "/usr/sbin/sshd"
HOSTILE = [
    "a b",
    "it's",
    'say "hi"',
    "x;touch PWNED_semicolon",
    "$(touch PWNED_subst)",
    "`touch PWNED_tick`",
    "*",
    "~",
    "-n",
]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateSshd:
    """An sshd on 127.0.0.1:<free port> accepting one generated key for the current user."""

    def __init__(self, d: Path):
        self.dir = d
        self.port = _free_port()
        self.log = d / "sshd.log"
        keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
        subprocess.run([*keygen, "-f", str(d / "host_key")], check=True)
        subprocess.run([*keygen, "-f", str(d / "client_key")], check=True)
        shutil.copy(d / "client_key.pub", d / "authorized_keys")
        (d / "sshd_config").write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    "ListenAddress 127.0.0.1",
                    f"HostKey {d / 'host_key'}",
                    f"PidFile {d / 'sshd.pid'}",
                    f"AuthorizedKeysFile {d / 'authorized_keys'}",
                    "PubkeyAuthentication yes",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "UsePAM no",
                    "StrictModes no",
                    "UseDNS no",
                    "PermitRootLogin prohibit-password",
                    "MaxSessions 100",
                    "LogLevel VERBOSE",
                    f"SetEnv PATH={os.environ['PATH']}",
                    "",
                ]
            )
        )
        host_pub = " ".join((d / "host_key.pub").read_text().split()[:2])
        (d / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_pub}\n")
        user = pwd.getpwuid(os.getuid()).pw_name
        (d / "ssh_config").write_text(
            "\n".join(
                [
                    "Host xprtest",
                    "    HostName 127.0.0.1",
                    f"    Port {self.port}",
                    f"    User {user}",
                    f"    IdentityFile {d / 'client_key'}",
                    "    IdentitiesOnly yes",
                    f"    UserKnownHostsFile {d / 'known_hosts'}",
                    "    StrictHostKeyChecking yes",
                    "",
                ]
            )
        )
        self.remsh_cmd = shlex.join(["ssh", "-F", str(d / "ssh_config")])
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-f", str(d / "sshd_config"), "-E", str(self.log)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                time.sleep(0.1)
        self.stop()
        pytest.skip(
            f"private sshd did not start: {self.log.read_text() if self.log.exists() else ''}"
        )

    def connections(self) -> int:
        """Logins accepted so far (one per real ssh connection, none for multiplexed ones)."""
        return self.log.read_text().count("Accepted publickey")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if not (os.path.exists(SSHD) and shutil.which("ssh") and shutil.which("rsync")):
        pytest.skip("needs OpenSSH server and client and rsync (ci/install-system-packages.sh)")
    if not os.path.isdir("/run/sshd") and os.getuid() == 0:
        pytest.skip(
            "sshd privilege separation directory /run/sshd is missing (run ci/start-sshd.sh)"
        )
    server = PrivateSshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture
def transport(sshd, tmp_path):
    t = SshTransport("xprtest", remsh_cmd=sshd.remsh_cmd, control_dir=tmp_path / "ctl")
    yield t
    t.close()


def test_arguments_and_cwd_reach_the_program_verbatim(transport, tmp_path):
    workdir = tmp_path / "work dir 'q' $(touch PWNED_cwd);x"
    workdir.mkdir()
    proc = transport.run(["printf", "%s\\n", *HOSTILE], cwd=str(workdir))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == HOSTILE
    assert transport.run(["pwd"], cwd=str(workdir)).stdout.strip() == str(workdir)
    assert not list(tmp_path.rglob("PWNED*"))
    assert not list(Path.home().glob("PWNED*"))


def test_env_values_with_shell_syntax_are_inert(transport, tmp_path):
    value = "v a l;touch PWNED_env $(touch PWNED_env2) 'x' \"y\""
    proc = transport.run(
        ["env", f"XPR_VALUE={value}", "sh", "-c", 'printf %s "$XPR_VALUE"'], cwd=str(tmp_path)
    )
    assert proc.stdout == value
    assert not list(tmp_path.rglob("PWNED*"))


def test_exit_codes_come_back(transport):
    assert transport.run(["sh", "-c", "echo out; echo err >&2; exit 3"]).returncode == 3
    proc = transport.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
    assert (proc.stdout, proc.stderr) == ("out\n", "err\n")


def test_put_and_get_dirs_with_hostile_names_private_modes(transport, tmp_path):
    local = tmp_path / "stage"
    (local / "sub dir").mkdir(parents=True)
    (local / "sub dir" / "f $(x) ;'q'").write_text("payload")
    (local / "plain").write_text("p")
    os.chmod(local / "plain", 0o644)
    remote = tmp_path / "remote root $(touch PWNED_r);'x'" / "job 1"
    transport.put_dir(str(local), str(remote))
    assert (remote / "sub dir" / "f $(x) ;'q'").read_text() == "payload"
    for d in (remote.parent, remote, remote / "sub dir"):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d
    assert stat.S_IMODE((remote / "plain").stat().st_mode) & 0o077 == 0

    (remote / "result").write_text("42")
    back = tmp_path / "back here"
    transport.get_dir(str(remote), str(back))
    assert (back / "result").read_text() == "42"
    assert (back / "sub dir" / "f $(x) ;'q'").read_text() == "payload"
    assert not list(tmp_path.rglob("PWNED*"))


def test_one_connection_for_many_commands_and_copies(sshd, tmp_path):
    before = sshd.connections()
    t = SshTransport("xprtest", remsh_cmd=sshd.remsh_cmd, control_dir=tmp_path / "ctl")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_text("x")
    for _ in range(20):
        assert t.run(["true"]).returncode == 0
    t.put_dir(str(tmp_path / "src"), str(tmp_path / "dst"))
    t.get_dir(str(tmp_path / "dst"), str(tmp_path / "back"))
    time.sleep(0.5)  # sshd writes its log line right after the login
    assert sshd.connections() - before == 1
    t.close()
    assert not os.path.exists(t.control_path)
    # after the master went away the next command starts exactly one new one
    assert t.run(["true"]).returncode == 0
    t.run(["true"])
    time.sleep(0.5)
    assert sshd.connections() - before == 2
    t.close()


def test_unreachable_host_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPYRE_RETRY", "2 0.1")
    port = _free_port()  # nothing listens there
    remsh = f"ssh -p {port} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null"
    t = SshTransport("127.0.0.1", remsh_cmd=remsh, control_dir=tmp_path / "ctl")
    with pytest.raises(
        SshError, match=r"cannot open an ssh connection to '127.0.0.1'.*after 2 tries"
    ):
        t.run(["true"])


def test_remsh_cmd_defaults_to_EXPYRE_RSH(monkeypatch, tmp_path):
    monkeypatch.setenv("EXPYRE_RSH", "ssh -p 2222 -o Compression=yes")
    t = SshTransport("somehost", control_dir=tmp_path)
    assert t.remsh_argv == ["ssh", "-p", "2222", "-o", "Compression=yes"]
    assert t.ssh_argv()[:5] == ["ssh", "-p", "2222", "-o", "Compression=yes"]
    assert "BatchMode=yes" in t.ssh_argv()
    monkeypatch.delenv("EXPYRE_RSH")
    assert SshTransport("somehost", control_dir=tmp_path).remsh_argv == ["ssh"]


def test_control_socket_path_stays_short_and_private(tmp_path):
    deep = tmp_path / ("d" * 120)
    t = SshTransport("user@cluster.example.org", control_dir=deep)
    assert len(t.control_path) <= 90
    assert stat.S_IMODE(os.stat(os.path.dirname(t.control_path)).st_mode) == 0o700
    near = SshTransport("user@cluster.example.org", control_dir=tmp_path / "c")
    assert os.path.dirname(near.control_path) == str(tmp_path / "c") or len(str(tmp_path)) > 60
    other = SshTransport(
        "user@cluster.example.org", remsh_cmd="ssh -p 2222", control_dir=tmp_path / "c"
    )
    assert other.control_path != near.control_path  # another port is another connection


def test_users_own_control_master_is_respected(tmp_path):
    t = SshTransport(
        "somehost", remsh_cmd=f"ssh -o ControlPath={tmp_path}/mine-%C", control_dir=tmp_path
    )
    assert t.control_path is None
    assert not any(a.startswith("ControlPath=") for a in t.ssh_argv()[3:])


@pytest.mark.parametrize("host", ["", "-oProxyCommand=evil", "two words"])
def test_bad_host_names_are_refused(host):
    with pytest.raises(ValueError, match="is not a host name"):
        SshTransport(host)


def test_stale_control_socket_left_by_a_killed_master_is_replaced(sshd, tmp_path):
    t = SshTransport("xprtest", remsh_cmd=sshd.remsh_cmd, control_dir=tmp_path / "ctl")
    # what a SIGKILLed master leaves behind: a socket file that nobody listens on
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(t.control_path)
    dead.close()
    assert stat.S_ISSOCK(os.stat(t.control_path).st_mode)
    before = sshd.connections()
    for _ in range(5):
        assert t.run(["true"]).returncode == 0
    time.sleep(0.5)  # sshd writes its log line right after the login
    # multiplexing works again: one new master, not one login per command
    assert sshd.connections() - before == 1
    assert t._master_alive()
    t.close()


def test_live_master_socket_is_never_removed(sshd, tmp_path):
    t = SshTransport("xprtest", remsh_cmd=sshd.remsh_cmd, control_dir=tmp_path / "ctl")
    assert t.run(["true"]).returncode == 0
    inode = os.stat(t.control_path).st_ino
    t._remove_stale_socket()
    assert os.stat(t.control_path).st_ino == inode
    assert t._master_alive()
    t.close()
