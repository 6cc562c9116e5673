"""expyre-wfl 0.1.6's scheduler methods that ran queue commands: submit, status, hold,
release, cancel.

This project's schedulers only build command lines and parse their output; a
:class:`expyre.system.System` runs them. Scripts written for 0.1.6 call
``Slurm(host).status(ids)`` or ``expyre.config.systems[name].scheduler.cancel(id)``
directly, so the classes of 0.1.6's names (``Slurm``, ``SGE``, ``PBS``, ``Local``) add
those methods with 0.1.6's signatures on top of the pure backends, running the backends'
commands through a System (its transport, retries and timing trace). A scheduler made by
a System uses that System; one made directly (``Slurm(host, remsh_cmd)``) makes its own
for ``host``.
"""

from __future__ import annotations

import os
import posixpath
import shlex
from collections.abc import Iterable
from typing import Any

from expyre.schedulers.base import JobRequest, QueueState
from expyre.units import time_to_sec

__all__ = ["LEGACY_STATUS", "LegacyCommands"]

#: our queue states -> 0.1.6's status words ("done" also for jobs no longer listed)
LEGACY_STATUS = {
    QueueState.QUEUED: "queued",
    QueueState.HELD: "held",
    QueueState.RUNNING: "running",
    QueueState.COMPLETED: "done",
    QueueState.FAILED: "failed",
    QueueState.NODE_FAIL: "failed",
    QueueState.TIMEOUT: "timeout",
    QueueState.CANCELLED: "other",
    QueueState.OUT_OF_MEMORY: "other",
    QueueState.UNKNOWN: "other",
}

# Creates the run directory (absolute, or relative to the home directory, as 0.1.6 took
# it) and prints its absolute path.
_MAKE_DIR = 'case "$1" in /*) d="$1";; *) d="$HOME/$1";; esac; mkdir -p -- "$d" && echo "$d"'


class LegacyCommands:
    """Mixin giving a pure scheduler backend 0.1.6's command-running methods.

    Parameters
    ----------
    host : str, optional
        ``[user@]host`` whose queue to use; None for this machine.
    remsh_cmd : str, optional
        Remote shell command (default ``$EXPYRE_RSH`` or ``ssh``).
    system : expyre.system.System, optional
        Run commands through this System (then ``host`` and ``remsh_cmd`` are its own).
    **options
        The pure backend's own constructor arguments.
    """

    def __init__(
        self,
        host: str | None = None,
        remsh_cmd: str | None = None,
        *,
        system: Any = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self._system = system
        if system is not None:
            host, remsh_cmd = system.config.host, system.config.remsh_cmd
        self.host = host
        self.remsh_cmd = remsh_cmd or os.environ.get("EXPYRE_RSH") or "ssh"

    def _runner(self) -> Any:
        """The System that runs this scheduler's commands (made on first use)."""
        if self._system is None:
            from expyre.config import SystemConfig, load_config  # config imports schedulers
            from expyre.system import System

            config = SystemConfig(
                name=f"{self.name}@{self.host or 'localhost'}",
                host=self.host,
                scheduler=self.name,
                partitions={},
                remsh_cmd=self.remsh_cmd,
            )
            self._system = System(config, load_config().root)
        return self._system

    def _run(self, argv: list[str], what: str, verbose: bool, **kw: Any) -> Any:
        if verbose:
            print(f"expyre {self.name}@{self.host or 'localhost'}: {shlex.join(argv)}")
        return self._runner().run(argv, what=what, **kw)

    # ------------------------------------------------------------------ 0.1.6's methods

    def submit(
        self,
        id: str,  # noqa: A002 - 0.1.6's name
        remote_dir: str,
        partition: str,
        commands: Iterable[str],
        max_time: int | str,
        header: Iterable[str],
        node_dict: dict,
        no_default_header: bool = False,
        script_exec: str = "/bin/bash",
        pre_submit_cmds: Iterable[str] = (),
        verbose: bool = False,
    ) -> str:
        """Write a job script running ``commands`` in ``remote_dir`` and submit it.

        Parameters
        ----------
        id : str
            Job name (also names the script and its stdout/stderr files).
        remote_dir : str
            Directory where the job runs (absolute, or relative to the home directory);
            created if missing.
        partition : str
            Partition (Slurm) or queue (SGE, PBS).
        commands : list of str
            Shell lines the job runs, after ``cd remote_dir``.
        max_time : int or str
            Time limit: seconds, or a time such as ``"2h"``.
        header : list of str
            Extra header lines, ``str.format``-ed with ``id``, ``partition``, ``queue``,
            ``max_time`` and the keys of ``node_dict``.
        node_dict : dict
            ``num_nodes``, ``num_cores`` and ``num_cores_per_node`` (as returned by
            :meth:`expyre.resources.Resources.find_nodes`).
        no_default_header : bool
            Only ``header``, none of the scheduler's usual lines.
        script_exec : str
            Interpreter on the script's first line.
        pre_submit_cmds : list of str
            Shell lines run before the submit command, in the same shell.
        verbose : bool
            Print each command.

        Returns
        -------
        str
            The scheduler's job id.

        Raises
        ------
        RuntimeError
            If the submit command failed or printed no job id.
        """
        from expyre.jobscript import format_header_lines  # jobscript imports schedulers

        nodes = _node_counts(node_dict)
        max_time_s = time_to_sec(max_time)
        if max_time_s is None:
            raise ValueError(f"{type(self).__name__}.submit: max_time={max_time!r} is needed")
        made = self._run(
            ["bash", "-c", _MAKE_DIR, "expyre", remote_dir], "create the run directory", verbose
        )
        job_dir = made.stdout.strip().splitlines()[-1]
        request = JobRequest(
            job_name=id,
            partition=partition,
            max_time_s=max_time_s,
            max_mem_kB=None,
            stdout=posixpath.join(job_dir, f"job.{id}.stdout"),
            stderr=posixpath.join(job_dir, f"job.{id}.stderr"),
            **nodes,
        )
        fields = {
            **node_dict,
            "id": id,
            "partition": partition,
            "queue": partition,
            "max_time": self.format_time_limit(max_time_s),
        }
        lines = [] if no_default_header else list(self.default_header(request))
        lines += format_header_lines(header, fields, f"{type(self).__name__}.submit header")
        script = "\n".join(
            [
                f"#!{script_exec}",
                *lines,
                "",
                *(f"export EXPYRE_{k.upper()}={v}" for k, v in nodes.items()),
                f"cd {shlex.quote(job_dir)} || exit 97",
                *(c.rstrip("\n") for c in commands),
                "",
            ]
        )
        name = f"job.script.{self.name}"
        self._run(
            [
                "bash",
                "-c",
                'printf "%s" "$2" > "$1"',
                "expyre",
                posixpath.join(job_dir, name),
                script,
            ],
            "write a job script",
            verbose,
        )
        argv = self.submit_command(posixpath.join(job_dir, name), job_dir)
        pre = list(pre_submit_cmds)
        if pre:
            argv = ["bash", "-c", " && ".join([*pre, "exec " + shlex.join(argv)])]
        from expyre.system import SystemCommandError  # system imports schedulers

        try:
            proc = self._run(argv, "submit a job", verbose, cwd=job_dir, retry=False)
            return self.parse_submit_output(proc.stdout)
        except (SystemCommandError, ValueError) as exc:
            raise RuntimeError(f"{type(self).__name__}.submit of job {id!r}: {exc}") from exc

    def status(self, remote_ids: str | Iterable[str], verbose: bool = False) -> dict[str, str]:
        """0.1.6's status words of jobs, asked in one command.

        Returns
        -------
        dict of str to str
            Every id given -> ``queued``, ``held``, ``running``, ``done``, ``failed``,
            ``timeout`` or ``other``; a job the queue no longer lists is ``done``.
        """
        ids = _ids(remote_ids)
        if not ids:
            return {}
        proc = self._run(self.status_command(ids), "ask the queue for job states", verbose)
        states = self.parse_status_output(proc.stdout, ids)
        return {i: LEGACY_STATUS[states[i]] if i in states else "done" for i in ids}

    def hold(self, remote_ids: str | Iterable[str], verbose: bool = False) -> None:
        """Hold queued jobs (they stay queued and do not start until released)."""
        self._run(self.hold_command(_ids(remote_ids)), "hold jobs", verbose, retry=False)

    def release(self, remote_ids: str | Iterable[str], verbose: bool = False) -> None:
        """Release held jobs."""
        self._run(self.release_command(_ids(remote_ids)), "release jobs", verbose, retry=False)

    def cancel(self, remote_ids: str | Iterable[str], verbose: bool = False) -> None:
        """Cancel jobs (queued or running)."""
        self._run(self.cancel_command(_ids(remote_ids)), "cancel jobs", verbose, retry=False)

    @staticmethod
    def node_dict_env_var_commands(node_dict: dict) -> list[str]:
        """Shell lines exporting ``EXPYRE_NUM_NODES``/``EXPYRE_NUM_CORES`` for a job.

        Either may be missing from ``node_dict``; it is then computed from the other and
        ``$EXPYRE_NUM_CORES_PER_NODE`` when the job runs.
        """
        lines = []
        if node_dict.get("num_nodes") is None:
            lines.append(
                f"export EXPYRE_NUM_NODES=$(( {node_dict['num_cores']} / "
                "$EXPYRE_NUM_CORES_PER_NODE ))"
            )
        else:
            lines.append(f"export EXPYRE_NUM_NODES={node_dict['num_nodes']}")
        if node_dict.get("num_cores") is None:
            lines.append(
                f"export EXPYRE_NUM_CORES=$(( {node_dict['num_nodes']} * "
                "$EXPYRE_NUM_CORES_PER_NODE ))"
            )
        else:
            lines.append(f"export EXPYRE_NUM_CORES={node_dict['num_cores']}")
        return lines

    @staticmethod
    def unset_scheduler_env_vars(prefix: str) -> list[str]:
        """With ``WFL_SCHEDULER_IGNORE_ENV`` set: shell words unsetting ``PREFIX_*`` variables
        (so a submission from inside a job does not inherit that job's settings)."""
        words: list[str] = []
        if "WFL_SCHEDULER_IGNORE_ENV" in os.environ:
            for name in os.environ:
                if name.startswith(prefix + "_"):
                    words += ["unset", name, "&&"]
        return words


def _node_counts(node_dict: dict) -> dict[str, int]:
    """Nodes, cores and cores per node; 0.1.6 allowed one of the first two to be left out."""
    per_node = node_dict.get("num_cores_per_node")
    nodes, cores = node_dict.get("num_nodes"), node_dict.get("num_cores")
    if not per_node or (nodes is None and cores is None):
        raise ValueError(
            f"submit: node_dict={node_dict!r} needs num_cores_per_node and num_nodes or "
            "num_cores (as Resources.find_nodes returns them)"
        )
    nodes = nodes if nodes is not None else -(-cores // per_node)
    cores = cores if cores is not None else nodes * per_node
    return {"num_nodes": nodes, "num_cores": cores, "num_cores_per_node": per_node}


def _ids(remote_ids: str | Iterable[str]) -> list[str]:
    return [remote_ids] if isinstance(remote_ids, str) else [str(i) for i in remote_ids]
