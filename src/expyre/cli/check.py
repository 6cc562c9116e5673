"""``xpr check SYSTEM``: can this system run expyre jobs? Each step timed, each failure fixed.

The steps go from the cheapest to the full round trip, and stop at the first failure since
every later step needs the earlier ones: the system's configuration, a command on its host
(the ssh login for remote systems), its run directory, the preflight (the python there can
import expyre and wfl at our versions), its scheduler, and one tiny job submitted, run and
collected -- then removed again with its directories.
"""

from __future__ import annotations

import platform
import posixpath
import shutil
import sys
import time
from collections.abc import Callable

import click

from expyre.cli._project import Project

__all__ = ["check_command"]


class _StepFailed(Exception):
    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix


def _step(title: str, action: Callable[[], str]) -> None:
    """Run one step, print ``[ ok ] seconds  title: detail`` or the failure and its fix."""
    t0 = time.monotonic()
    try:
        detail = action()
    except _StepFailed as exc:
        click.echo(f"[FAIL] {time.monotonic() - t0:6.2f} s  {title}: {exc}")
        click.echo(f"       fix: {exc.fix}")
        sys.exit(1)
    click.echo(
        f"[ ok ] {time.monotonic() - t0:6.2f} s  {title}" + (f": {detail}" if detail else "")
    )


@click.command("check")
@click.argument("system_name", metavar="SYSTEM")
@click.option(
    "--timeout",
    type=float,
    default=600.0,
    show_default=True,
    help="seconds to wait for the test job (it may queue behind others)",
)
@click.pass_obj
def check_command(project: Project, system_name: str, timeout: float) -> None:
    """Check that SYSTEM can run jobs: preflight plus one tiny job round trip.

    Prints each step with its time; the first failure stops the check and says how
    to fix it. Exit status 1 on failure.
    """
    from expyre.config import ConfigError
    from expyre.system import SystemCommandError, get_system

    config = project.config()
    state: dict = {}

    def configured() -> str:
        try:
            sysconf = config.system(system_name)
        except ConfigError as exc:
            raise _StepFailed(str(exc), "add the system to config.json (see README)") from exc
        state["system"] = get_system(system_name, config)
        partitions = ", ".join(sysconf.partitions) or "none"
        where = sysconf.host or "this machine"
        return f"{sysconf.scheduler} on {where}, partitions {partitions} ({sysconf.source})"

    def reachable() -> str:
        system = state["system"]
        try:
            proc = system.run(["uname", "-n"], what="run a command on its host", retry=False)
        except SystemCommandError as exc:
            fix = (
                f"`ssh {system.config.host} true` must work without a password prompt: set up "
                "a key (ssh-copy-id) and ~/.ssh/config, or set EXPYRE_RSH"
                if system.config.host
                else "check that this machine can start processes (`uname -n`)"
            )
            raise _StepFailed(str(exc), fix) from exc
        return f"host answers as {proc.stdout.strip()}"

    def rundir() -> str:
        system = state["system"]
        if system.rundir is None:
            return f"jobs run in their stage directories under {config.stage_root}"
        probe = posixpath.join(system.rundir, f".xpr-check-{time.time_ns()}")
        try:
            system.run(["mkdir", "-p", probe], what="create a directory in rundir", retry=False)
            system.run(["rmdir", probe], what="remove it again", retry=False)
        except SystemCommandError as exc:
            raise _StepFailed(
                str(exc),
                f'make {system.rundir} writable there, or set "rundir" of {system_name!r} in '
                "config.json to a writable directory (on a filesystem the nodes share)",
            ) from exc
        return f"{system.rundir} is writable"

    def scheduler() -> str:
        system = state["system"]
        try:
            system.find_by_name(f"xpr-check-{time.time_ns()}")
        except NotImplementedError:
            return "skipped: this scheduler cannot list jobs by name"
        except SystemCommandError as exc:
            raise _StepFailed(
                str(exc),
                f"the {system.config.scheduler} commands must run there: add what sets them up "
                '(e.g. "module load slurm") to the system\'s "commands" in config.json',
            ) from exc
        return f"{system.config.scheduler} answers"

    def preflight() -> str:
        from expyre.preflight import PreflightError, check_system

        try:
            report = check_system(state["system"], force=True)
        except PreflightError as exc:
            raise _StepFailed(str(exc), "see the message: it names what to install or set") from exc
        except SystemCommandError as exc:
            raise _StepFailed(str(exc), 'check the system\'s "commands" in config.json') from exc
        modules = report.get("modules", {})
        versions = ", ".join(f"{m} {v.get('version', '?')}" for m, v in sorted(modules.items()))
        return f"python {report.get('python_version', '?')}; {versions}"

    def round_trip() -> str:
        from expyre.errors import JobNotReady, RemoteJobError
        from expyre.func import ExPyRe

        job = ExPyRe("xpr_check", function=platform.node, try_restart_from_prev=False)
        state["job"] = job
        try:
            job.start({"num_cores": 1, "max_time": "5m"}, system_name, partial_node=True)
            value, _, _ = job.get_results(timeout=timeout)
        except (RemoteJobError, JobNotReady) as exc:
            raise _StepFailed(
                str(exc).splitlines()[0],
                f"`xpr show {job.id}` and `xpr logs {job.id} --stderr` tell why; a job that "
                "only waits needs a larger --timeout or an idle partition",
            ) from exc
        except Exception as exc:  # submission problems: resources, partitions, scripts
            raise _StepFailed(
                f"{type(exc).__name__}: {exc}",
                "check the partitions and header of the system in config.json",
            ) from exc
        row = job.refresh().row
        return (
            f"job {job.remote_id} ran on {value} ({job.status}, {row['n_submissions']} submission)"
        )

    try:
        for title, action in [
            (f"system {system_name!r} is configured", configured),
            ("its host runs commands", reachable),
            ("run directory", rundir),
            ("preflight (expyre and its clients importable there)", preflight),
            ("scheduler", scheduler),
            ("tiny job (submit, run, collect)", round_trip),
        ]:
            _step(title, action)
    finally:
        job = state.get("job")
        if job is not None:
            _remove_check_job(job)
    click.echo(f"{system_name}: ready for jobs")


def _remove_check_job(job) -> None:
    """Cancel (if needed) and delete the test job with its directories: it was only a probe."""
    from expyre.system import get_system

    try:
        job.refresh()
        job.cancel()
        row = job.row
        if row["remote_dir"] and row["remote_dir"] != row["stage_dir"] and row["system"]:
            system = get_system(row["system"], job.config)
            system.remove_dir(row["remote_dir"], job._db.project_id)
        shutil.rmtree(job.stage_dir, ignore_errors=True)
        job.forget()
    except Exception as exc:  # say what is left; never hide the check's own result
        click.echo(
            f"(could not remove the test job {job.id}: {exc}; `xpr rm --cancel -c -i {job.id}`)"
        )
