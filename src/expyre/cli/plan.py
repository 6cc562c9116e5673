"""``xpr plan -- COMMAND...``: run a workflow script in plan mode and print its plan.

The script runs with ``$WFL_PLAN`` naming a fresh plan file: each autoparallelized call it
reaches records what it would do (and runs nothing, see :mod:`wfl.autoparallelize.plan`).
The plan is printed when the script ends, also when it stopped with an error part way.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import click

from expyre.cli._project import Project
from expyre.plan import PLAN_ENV_VAR, read_records, render

__all__ = ["plan_command"]


@click.command("plan", context_settings={"ignore_unknown_options": True})
@click.option(
    "--show",
    "show_file",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help=f"print the plan in FILE (written by a script run with {PLAN_ENV_VAR}=FILE)",
)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.pass_context
def plan_command(ctx: click.Context, show_file: str | None, command: tuple[str, ...]) -> None:
    """Show what a workflow would submit, submitting nothing: xpr plan -- python script.py

    \b
    For each autoparallelized call the script reaches: its name and labels, the
    WFL_EXPYRE_INFO key it matched (or "runs here"), system, partition and resources,
    and each job: reused (an existing job for the same call and code), new, or replacing
    a stale one (same call, changed code); then the job script's header.
    No job row, stage directory or queue command is created, and no call runs: calls
    after one that would compute their inputs show "counts unknown".
    Exit status: the script's.
    """
    if show_file is not None:
        if command:
            raise click.UsageError("give either --show FILE or a command, not both")
        click.echo(render(read_records(show_file)), nl=False)
        return
    if not command:
        raise click.UsageError("no command: use e.g. `xpr plan -- python do_workflow.py`")
    env = dict(os.environ)
    parent = ctx.parent.params if ctx.parent else {}
    if parent.get("root") or parent.get("dbfile"):
        env["EXPYRE_ROOT"] = str(ctx.ensure_object(Project).root)
    with tempfile.TemporaryDirectory(prefix="xpr-plan-") as tmp:
        plan_path = Path(tmp) / "plan.jsonl"
        env[PLAN_ENV_VAR] = str(plan_path)
        try:
            code = subprocess.call(list(command), env=env)
        except OSError as exc:
            raise click.ClickException(f"cannot run {command[0]!r}: {exc}") from None
        records = read_records(plan_path)
    click.echo(render(records), nl=False)
    if code != 0:
        click.echo(
            f"plan: the script exited with status {code} after {len(records)} call(s); "
            "calls after that point are not in the plan",
            err=True,
        )
    sys.exit(code)
