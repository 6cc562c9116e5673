"""A configured system = a transport (local or ssh) + a scheduler (pure) + its config.

The :class:`System` runs what its scheduler builds, through its transport, retrying
transient failures (``EXPYRE_RETRY="tries seconds"``, default ``"3 5"``), and tracing each
command with its duration on stderr when ``EXPYRE_TIMING_VERBOSE`` is set.
"""

from __future__ import annotations

import os
import posixpath
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

from expyre.config import ProjectConfig, SystemConfig, load_config
from expyre.dbpaths import project_dir
from expyre.envvars import env_flag
from expyre.projectid import is_project_dir_name
from expyre.schedulers import QueueState, Scheduler, get_scheduler
from expyre.transport import LocalTransport, Transport, retry_policy

__all__ = ["SystemCommandError", "System", "get_system"]

_COMMAND_TIMEOUT_S = 300.0  # one scheduler or ssh command; a hung ssh must not hang us forever


class SystemCommandError(RuntimeError):
    """A scheduler or transport command failed even after retries."""


def _trace(message: str) -> None:
    if env_flag("EXPYRE_TIMING_VERBOSE"):
        print(f"expyre timing: {message}", file=sys.stderr, flush=True)


class System:
    """One system of config.json, ready to stage, submit, poll and cancel.

    Parameters
    ----------
    config : SystemConfig
    root : Path
        Project root (the local queue keeps its records under ``root/localqueue/NAME``).
    transport : Transport, optional
        Override (tests); default local for ``host: null``, ssh otherwise.
    """

    def __init__(self, config: SystemConfig, root: Path, transport: Transport | None = None):
        self.config = config
        self.name = config.name
        self.root = Path(root)
        self.transport = transport or self._make_transport()
        self._rundir: str | None = None
        self._scheduler: Scheduler | None = None
        self._max_array_size: int | None | bool = False  # False: not asked yet
        self._lock = threading.Lock()

    def _make_transport(self) -> Transport:
        if self.config.host is None:
            return LocalTransport()
        from expyre.ssh import SshTransport  # only needed (and only imported) for remote hosts

        return SshTransport(self.config.host, remsh_cmd=self.config.remsh_cmd)

    # ------------------------------------------------------------------ layout

    @property
    def is_local(self) -> bool:
        """True for ``host: null`` (no ssh)."""
        return self.config.host is None

    @property
    def rundir(self) -> str | None:
        """Absolute directory holding job directories where jobs run, or None (= stage dirs)."""
        if self._rundir is None:
            rundir = self.config.rundir
            if rundir is None and self.is_local:
                return None
            rundir = rundir or "expyre_rundir"
            if rundir == "~" or rundir.startswith("~/"):
                # "~/runs" means the home directory where jobs run; a bare join would make
                # a directory literally called "~"
                rundir = rundir[2:] or "."
                base = str(Path.home()) if self.is_local else self._remote_home()
                rundir = posixpath.normpath(posixpath.join(base, rundir))
            if not posixpath.isabs(rundir):
                base = str(self.root) if self.is_local else self._remote_home()
                rundir = posixpath.join(base, rundir)
            self._rundir = rundir
        return self._rundir

    def _remote_home(self) -> str:
        proc = self.run(["pwd"], what="find the remote home directory")
        return proc.stdout.strip().splitlines()[-1]

    # ------------------------------------------------------------------ 0.1.6's attributes
    # Scripts written for expyre-wfl 0.1.6 read these off ``expyre.config.systems[name]``.

    @property
    def host(self) -> str | None:
        """``[user@]host`` where jobs run (None: this machine)."""
        return self.config.host

    @property
    def partitions(self) -> dict[str, dict]:
        """Each partition's ``num_cores`` (per node), ``max_time`` (s) and ``max_mem`` (kB).

        None where config.json gives no limit; the form
        :meth:`expyre.resources.Resources.find_nodes` takes.
        """
        return {
            name: {"num_cores": p.num_cores, "max_time": p.max_time_s, "max_mem": p.max_mem_kB}
            for name, p in self.config.partitions.items()
        }

    @property
    def remote_rundir(self) -> str | None:
        """0.1.6's name of :attr:`rundir`."""
        return self.rundir

    @property
    def queuing_sys_header(self) -> list[str]:
        """Header lines of every job on this system (config.json's ``header``)."""
        return list(self.config.header)

    @property
    def no_default_header(self) -> bool:
        return self.config.no_default_header

    @property
    def pre_submit_cmds(self) -> list[str]:
        return list(self.config.pre_submit_cmds)

    @property
    def commands(self) -> list[str]:
        """Shell lines run at the start of every job on this system."""
        return list(self.config.commands)

    @property
    def remsh_cmd(self) -> str:
        return self.config.remsh_cmd

    #: first line of job scripts (fixed here: the scripts are bash)
    script_exec = "/bin/bash"

    def job_dir(self, job_id: str, stage_dir: str | os.PathLike, project_id: str) -> str:
        """Where job ``job_id`` runs: its stage dir for local hosts without rundir, else
        ``<rundir>/<project id>/<job id>`` (a copied project has the original's job ids,
        never its project id: see :mod:`expyre.projectid`)."""
        rundir = self.rundir
        if rundir is None:
            return str(stage_dir)
        return posixpath.join(rundir, project_id, job_id)

    def project_rundir(self, project_id: str) -> str | None:
        """The directory of one project's run directories (None: jobs run in stage dirs)."""
        rundir = self.rundir
        return None if rundir is None else posixpath.join(rundir, project_id)

    @property
    def scheduler(self) -> Scheduler:
        """The scheduler backend (built on first use)."""
        if self._scheduler is None:
            options = {}
            if self.config.scheduler == "local":
                if self.is_local:
                    queue_dir = str(self.root / "localqueue" / self.name)
                else:
                    queue_dir = posixpath.join(self.rundir, "_localqueue")
                options = {
                    "queue_dir": queue_dir,
                    "python_cmd": self.config.python_cmd,
                    "partition_cores": {
                        name: p.num_cores for name, p in self.config.partitions.items()
                    },
                    "setup_commands": list(self.config.commands),
                }
            # with 0.1.6's submit/status/hold/release/cancel, run through this System
            self._scheduler = get_scheduler(self.config.scheduler, system=self, **options)
        return self._scheduler

    def max_array_size(self) -> int | None:
        """Most tasks in one job array at this site (asked once), None if unknown/unlimited.

        Raises
        ------
        NotImplementedError
            If the scheduler has no job arrays.
        """
        self.scheduler.array_header(2)  # raises for schedulers without arrays
        if self._max_array_size is False:
            argv = self.scheduler.max_array_size_command()
            size = None
            if argv is not None:
                try:
                    out = self.run(argv, what="ask the largest job array allowed").stdout
                    size = self.scheduler.parse_max_array_size(out)
                except SystemCommandError:
                    size = None  # not allowed to ask: no limit known, the submit will tell
            self._max_array_size = size
        return self._max_array_size

    def change_marker(self) -> str | None:
        """Local path whose mtime changes when a job of this system ends, or None.

        Only for systems on this machine (over ssh the path is the remote host's).
        """
        return self.scheduler.change_marker() if self.is_local else None

    # ------------------------------------------------------------------ running commands

    def run(
        self, argv: list[str], *, cwd: str | None = None, what: str, retry: bool = True
    ) -> subprocess.CompletedProcess:
        """Run ``argv`` on the system, retrying transient failures.

        Parameters
        ----------
        argv : list of str
            Command; items are never shell-interpreted.
        cwd : str, optional
            Directory on the system to run in.
        what : str
            What the command is for, used in messages.
        retry : bool
            Retry on non-zero exit or transport errors.

        Raises
        ------
        SystemCommandError
            With the command, its exit code and output, after the last try.
        """
        tries, wait = retry_policy() if retry else (1, 0.0)
        last = ""
        for attempt in range(1, tries + 1):
            t0 = time.monotonic()
            try:
                proc = self.transport.run(argv, cwd=cwd, timeout=_COMMAND_TIMEOUT_S)
            except (OSError, subprocess.TimeoutExpired) as exc:
                last = repr(exc)
            else:
                _trace(
                    f"{self.name}: {shlex.join(argv)[:200]} -> {proc.returncode} "
                    f"in {time.monotonic() - t0:.2f} s"
                )
                if proc.returncode == 0:
                    return proc
                last = f"exit code {proc.returncode}, stdout {proc.stdout[-2000:]!r}, stderr {proc.stderr[-2000:]!r}"
            if attempt < tries:
                time.sleep(wait)
        raise SystemCommandError(
            f"system {self.name!r} ({self.transport.where}): could not {what}: "
            f"{shlex.join(argv)} failed {tries} time(s); last: {last}"
        )

    def _with_pre_submit(self, argv: list[str]) -> list[str]:
        if not self.config.pre_submit_cmds:
            return argv
        script = " && ".join([*self.config.pre_submit_cmds, "exec " + shlex.join(argv)])
        return ["bash", "-c", script]

    # ------------------------------------------------------------------ staging

    def stage_in(self, stage_dir: str | os.PathLike, job_dir: str) -> None:
        """Copy a stage directory to where the job runs (no-op when they are the same)."""
        t0 = time.monotonic()
        self.transport.put_dir(str(stage_dir), job_dir)
        _trace(f"{self.name}: stage in {job_dir} in {time.monotonic() - t0:.2f} s")

    def stage_out(self, job_dir: str, stage_dir: str | os.PathLike) -> None:
        """Copy a job directory back into its stage directory (no-op when the same)."""
        t0 = time.monotonic()
        self.transport.get_dir(job_dir, str(stage_dir))
        _trace(f"{self.name}: stage out {job_dir} in {time.monotonic() - t0:.2f} s")

    # ------------------------------------------------------------------ queue operations

    def submit(self, script_path: str, job_dir: str) -> str:
        """Submit a job script once (no retry: a retried submit could queue a duplicate).

        Returns
        -------
        str
            The scheduler's job id.

        Raises
        ------
        SystemCommandError
            If the submit command failed or printed no job id.
        """
        argv = self._with_pre_submit(self.scheduler.submit_command(script_path, job_dir))
        proc = self.run(argv, cwd=job_dir, what="submit a job", retry=False)
        try:
            return self.scheduler.parse_submit_output(proc.stdout)
        except ValueError as exc:
            raise SystemCommandError(f"system {self.name!r}: {exc}") from exc

    def queue_states(self, remote_ids: list[str]) -> dict[str, QueueState]:
        """Queue states of all ``remote_ids`` in ONE scheduler call; ids not in the queue are
        absent. (What the queue says, not a job's state in the jobs database.)"""
        if not remote_ids:
            return {}
        proc = self.run(
            self.scheduler.status_command(remote_ids), what="ask the queue for job states"
        )
        return self.scheduler.parse_status_output(proc.stdout, remote_ids)

    def status(self, remote_ids: list[str]) -> dict[str, QueueState]:
        """The name :meth:`queue_states` had in expyre-wfl 0.1.6-era scripts; the same call."""
        return self.queue_states(remote_ids)

    def accounting(self, remote_ids: list[str]) -> dict[str, QueueState]:
        """Final states from the scheduler's accounting (sacct, qacct), {} where unavailable."""
        argv = self.scheduler.accounting_command(remote_ids) if remote_ids else None
        if argv is None:
            return {}
        try:
            proc = self.run(argv, what="ask accounting about finished jobs")
        except SystemCommandError:
            return {}  # accounting is a hint; the grace period still protects us
        return self.scheduler.parse_accounting_output(proc.stdout, remote_ids)

    def find_by_name(self, job_name: str) -> str | None:
        """Scheduler id of a queued job named exactly ``job_name``; None if not found.

        Raises
        ------
        NotImplementedError
            If the scheduler cannot search by name.
        """
        argv = self.scheduler.find_by_name_command(job_name)
        if argv is None:
            raise NotImplementedError(f"scheduler {self.scheduler.name!r} cannot find jobs by name")
        proc = self.run(argv, what="look for a job by name")
        found = self.scheduler.parse_find_by_name_output(proc.stdout, job_name)
        if job_name in found:
            return found[job_name]
        # a backend may shorten names: accept one unambiguous candidate of useful length
        close = [
            rid
            for name, rid in found.items()
            if name.startswith(job_name) or (len(name) >= 12 and job_name.startswith(name))
        ]
        return close[0] if len(close) == 1 else None

    def cancel(self, remote_ids: list[str]) -> None:
        """Cancel jobs (errors from already finished jobs are ignored by the caller)."""
        if remote_ids:
            self.run(self.scheduler.cancel_command(remote_ids), what="cancel jobs", retry=False)

    def remove_dir(self, job_dir: str, project_id: str) -> None:
        """Delete a job directory where jobs run: only ever one of project ``project_id``.

        That is a path under ``<rundir>/<project_id>/``, or (written before run directories
        were kept per project) a job directory directly in ``rundir``. Another project's
        directory -- e.g. the original's, seen from a copy -- is refused.

        Raises
        ------
        ValueError
            If ``job_dir`` is not a directory of this project under ``rundir``.
        """
        rundir = self.rundir
        prefix = (rundir or "").rstrip("/") + "/"
        parts = posixpath.normpath(job_dir)[len(prefix) :].split("/")
        if rundir is None or not job_dir.startswith(prefix) or ".." in parts or not parts[0]:
            raise ValueError(f"refusing to delete {job_dir!r}: not inside rundir {rundir!r}")
        # a run directory inside this project (a local rundir such as "runs") is this
        # project's, whatever id it was made under: a copy's are its own copies
        own_copy = self.is_local and _inside(job_dir, str(project_dir(self.root)))
        if is_project_dir_name(parts[0]) and parts[0] != project_id and not own_copy:
            raise ValueError(
                f"refusing to delete {job_dir!r}: it belongs to another project "
                f"({parts[0]}; this one is {project_id}) -- e.g. the original of a copied "
                "project; delete it from that project"
            )
        if is_project_dir_name(parts[0]) and len(parts) < 2:
            raise ValueError(f"refusing to delete {job_dir!r}: a whole project's run directory")
        self.run(["rm", "-rf", "--", job_dir], what="delete a job directory")


def _inside(path: str, directory: str) -> bool:
    path = posixpath.normpath(path)
    return path == directory or path.startswith(directory.rstrip("/") + "/")


_SYSTEMS: dict[tuple[str, str], System] = {}
_SYSTEMS_LOCK = threading.Lock()


def get_system(name: str | None = None, config: ProjectConfig | None = None) -> System:
    """The (cached, so ssh connections are shared) System called ``name``.

    Parameters
    ----------
    name : str, optional
        System name; None picks the default (``EXPYRE_SYS`` etc., see :mod:`expyre.config`).
    config : ProjectConfig, optional
        Default: :func:`expyre.config.load_config`.
    """
    config = config or load_config()
    sys_config = config.system(name)
    cache_key = (str(config.root), sys_config.name)
    with _SYSTEMS_LOCK:
        system = _SYSTEMS.get(cache_key)
        if system is None or system.config != sys_config:
            system = System(sys_config, config.root)
            _SYSTEMS[cache_key] = system
    return system
