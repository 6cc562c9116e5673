"""``xpr items``: the project's stored per-item results, what runs reused, and dropping them."""

from __future__ import annotations

import json
import re
import sys

import click

from expyre.cli._format import print_table, when
from expyre.cli._project import Project
from expyre.itemstore import ITEMS_DB_NAME, ItemStore

__all__ = ["items_command"]


def _size(nbytes: int | None) -> str:
    value = float(nbytes or 0)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover - the loop always returns


def _store(project: Project) -> ItemStore:
    return ItemStore(project.root / ITEMS_DB_NAME)


@click.group("items", invoke_without_command=True)
@click.option("--runs", "n_runs", default=10, show_default=True, help="latest calls to show")
@click.option("--json", "as_json", is_flag=True, help="print JSON instead of tables")
@click.pass_context
def items_command(ctx: click.Context, n_runs: int, as_json: bool) -> None:
    """Stored per-item results: per operation and code, and what the latest runs reused.

    \b
    Each item of a queued operation is kept under its own key (the operation, its
    arguments, the item by value, the code fingerprint) in _expyre/items.db, so a
    rerun reuses it whatever the chunking. Examples:
      xpr items                         what is stored, what the latest calls reused
      xpr items rm -o relax --older-than 30d -y   drop old items of one operation
    """
    if ctx.invoked_subcommand is not None:
        return
    project: Project = ctx.obj
    store = _store(project)
    summary, runs = store.summary(), store.runs(n_runs)
    if as_json:
        click.echo(json.dumps({"stored": summary, "runs": runs}, indent=1))
        return
    if not summary and not runs:
        click.echo(f"no stored items in {store.path}")
        return
    total = sum(r["n_items"] for r in summary)
    click.echo(f"{total} stored item(s), {_size(sum(r['nbytes'] or 0 for r in summary))} "
               f"in {store.path}")  # fmt: skip
    print_table(
        ["OPERATION", "CODE", "ITEMS", "SIZE", "OLDEST", "NEWEST"],
        [
            [
                r["operation"],
                r["code"][:12],
                str(r["n_items"]),
                _size(r["nbytes"]),
                when(r["oldest"]),
                when(r["newest"]),
            ]
            for r in summary
        ],  # fmt: skip
        shrink=[0],
    )
    if runs:
        click.echo("latest queued calls (newest first):")
        print_table(
            ["WHEN", "JOB_NAME", "OPERATION", "ITEMS", "REUSED", "WAITED", "COMPUTED"],
            [
                [
                    when(r["at"]),
                    r["job_name"],
                    r["operation"],
                    str(r["n_items"]),
                    str(r["n_reused"]),
                    str(r["n_running"]),
                    str(r["n_new"]),
                ]
                for r in runs
            ],  # fmt: skip
            shrink=[2, 1],
        )


@items_command.command("rm")
@click.option("-o", "--operation", default=None, help="regex searched in module:operation")
@click.option(
    "--older-than", default=None, help="only items stored longer ago than this (30d, 12h, 3600)"
)
@click.option("-y", "--yes", is_flag=True, help="do not ask")
@click.option("--dry-run", is_flag=True, help="count what would be dropped; change nothing")
@click.pass_obj
def items_rm_command(
    project: Project, operation: str | None, older_than: str | None, yes: bool, dry_run: bool
) -> None:
    """Drop stored items (at least one of -o/--older-than; -o '.' means all).

    \b
    A dropped item is computed again by the next run that needs it -- unless a job
    of the same chunk still holds its result (the rerun finds that job by its key):
    remove such jobs with `xpr rm -c` too. `xpr rm` drops the items of stale jobs.
    """
    if operation is None and older_than is None:
        raise click.UsageError("give -o/--operation REGEX and/or --older-than AGE; -o . drops all")
    if operation is not None:
        try:
            re.compile(operation)
        except re.error as exc:
            raise click.BadParameter(f"{operation!r} is not a regular expression ({exc})",
                                     param_hint="-o/--operation") from None  # fmt: skip
    age = None
    if older_than is not None:
        from expyre.units import parse_time

        try:
            age = parse_time(older_than, "--older-than")
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--older-than") from None
    store = _store(project)
    n = store.drop(operation=operation, older_than_s=age, dry_run=True)
    if n == 0:
        click.echo("no stored items match; nothing dropped")
        return
    if dry_run:
        click.echo(f"would drop {n} stored item(s)")
        return
    if not yes and not click.confirm(f"drop {n} stored item(s)?"):
        click.echo("nothing dropped", err=True)
        sys.exit(1)
    dropped = store.drop(operation=operation, older_than_s=age)
    click.echo(f"dropped {dropped} stored item(s)")
