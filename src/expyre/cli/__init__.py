"""``xpr``: look at and manage the jobs of one project (its ``jobs.db``).

The project is found like everywhere in expyre: ``$EXPYRE_ROOT``, else the nearest
``_expyre`` directory upwards from the current directory, else ``~/.expyre`` (or
``--root DIR`` / ``--dbfile DIR/jobs.db``). Each command lives in its own module; this one
only assembles the group. Commands and short options keep the meaning they had in the first
``xpr`` (ExPyRe 0.1.6), so its users' notes and scripts work unchanged.
"""

from __future__ import annotations

import sys

import click

from expyre.cli._project import Project

__all__ = ["cli", "main"]


class _LazyGroup(click.Group):
    """A group whose commands are imported on first use: ``xpr ls`` loads only what it needs."""

    lazy = {
        "ls": ("expyre.cli.listing", "ls_command"),
        "rm": ("expyre.cli.removing", "rm_command"),
        "sync": ("expyre.cli.managing", "sync_command"),
        "reset_status": ("expyre.cli.managing", "reset_status_command"),
        "fail_job": ("expyre.cli.managing", "fail_job_command"),
        "create_job": ("expyre.cli.managing", "create_job_command"),
        "db_unlock": ("expyre.cli.managing", "db_unlock_command"),
        "show": ("expyre.cli.inspecting", "show_command"),
        "logs": ("expyre.cli.inspecting", "logs_command"),
        "report": ("expyre.cli.report", "report_command"),
        "check": ("expyre.cli.check", "check_command"),
        "plan": ("expyre.cli.plan", "plan_command"),
        "items": ("expyre.cli.items", "items_command"),
    }

    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx, name):
        if name in self.lazy:
            import importlib

            module, attr = self.lazy[name]
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    # the version of whichever distribution ships expyre, read only when asked (slow)
    if not value or ctx.resilient_parsing:
        return
    import expyre

    click.echo(f"xpr, version {expyre.__version__}")
    ctx.exit()


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    default=None,
    help="project root holding jobs.db (default: $EXPYRE_ROOT, nearest _expyre, ~/.expyre)",
)
@click.option("--dbfile", default=None, help="a project's jobs.db file (its directory is the root)")
@click.pass_context
def cli(ctx: click.Context, root: str | None, dbfile: str | None) -> None:
    """Manage expyre jobs: list, inspect, refresh, reset, remove, report.

    \b
    Examples:
      xpr ls                         all jobs (a summary for big projects)
      xpr ls -s failed,died -l       failed jobs, with their directories
      xpr ls --failures              one reason per failed job
      xpr show ID / xpr logs ID      one job: history, script, error / its output
      xpr sync                       ask the queues about ongoing jobs now
      xpr reset_status -n 'relax.*' -y   submit those jobs again on the next run
      xpr rm -y -c -s processed      delete finished jobs and their directories
      xpr rm --cancel -c -n test -y  cancel matching queued jobs, then delete them
      xpr report -o jobs.html        one HTML page: counts, table, failures, timeline
      xpr check SYSTEM               preflight + one tiny job on SYSTEM
      xpr plan -- python wf.py       what wf.py would submit (submits nothing)
      xpr items                      stored per-item results; what runs reused
    """
    from expyre.envvars import EnvVarError, check_environment

    try:
        check_environment()  # a typo in a variable is reported before any command runs
    except EnvVarError as exc:
        raise click.ClickException(str(exc)) from None
    ctx.obj = Project(root, dbfile)


def main() -> None:  # pragma: no cover - console script shim
    """Entry point used by ``python -m expyre.cli``."""
    sys.exit(cli())
