"""``xpr``: look at and manage the jobs of one project (its ``jobs.db``).

The project is found like everywhere in expyre: ``$EXPYRE_ROOT``, else the nearest
``_expyre`` directory upwards from the current directory, else ``~/.expyre``
(or ``--root DIR``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path

import click

from expyre.config import ConfigError, ProjectConfig, find_root, load_config
from expyre.jobsdb import LIVE_STATES, RESETTABLE_STATES, IllegalTransition, JobsDB

__all__ = ["cli"]

_FILTER_HELP = "regular expression(s) matched against the whole {}; repeat or comma-separate"


def _filters(f):
    for name in ("system", "status", "name", "id"):
        f = click.option(
            f"--{name}",
            f"{name}_patterns",
            multiple=True,
            metavar="REGEX",
            help=_FILTER_HELP.format(f"job {name}"),
        )(f)
    return f


class _Project:
    """The project (config + database) a command works on, opened only when needed."""

    def __init__(self, root: str | None) -> None:
        self.root = Path(root).resolve() if root else find_root()

    def config(self) -> ProjectConfig:
        try:
            return load_config(self.root)
        except ConfigError as exc:
            raise click.ClickException(str(exc)) from exc

    def db(self) -> JobsDB:
        path = self.root / "jobs.db"
        if not path.exists():
            raise click.ClickException(
                f"no jobs database at {path}: this is not an expyre project (no _expyre "
                "directory here or above, EXPYRE_ROOT unset, and no jobs in ~/.expyre); "
                "cd into a project, or pass --root DIR"
            )
        return JobsDB(path)


def _compile(patterns: tuple[str, ...], what: str) -> list[re.Pattern] | None:
    items = [p for group in patterns for p in group.split(",") if p]
    if not items:
        return None
    try:
        return [re.compile(p) for p in items]
    except re.error as exc:
        raise click.BadParameter(f"{exc}", param_hint=f"--{what}") from exc


def _select(
    db: JobsDB, id_patterns, name_patterns, status_patterns, system_patterns, decode_info=True
) -> list[dict]:
    tests = [
        (column, _compile(patterns, column))
        for column, patterns in (
            ("id", id_patterns),
            ("name", name_patterns),
            ("status", status_patterns),
            ("system", system_patterns),
        )
    ]
    tests = [(c, regexes) for c, regexes in tests if regexes]
    return [
        row
        for row in db.select(decode_info=decode_info)
        if all(any(r.fullmatch(str(row[c] or "")) for r in regexes) for c, regexes in tests)
    ]


def _age(t: float | None, now: float) -> str:
    if not t:
        return "-"
    s = int(now - t)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def _table(rows: list[dict], long: bool) -> str:
    columns = ["id", "name", "status", "system", "remote_id", "n_sub", "age"]
    if long:
        columns += ["queue_state", "updated", "stage_dir", "remote_dir", "key"]
    now = time.time()

    def cells(r: dict) -> list[str]:
        out = [r["id"], r["name"], r["status"], r["system"] or "-", r["remote_id"] or "-",
               str(r["n_submissions"]), _age(r["created_at"], now)]  # fmt: skip
        if long:
            out += [r["queue_state"] or "-", _age(r["updated_at"], now), r["stage_dir"],
                    r["remote_dir"] or "-", r["key"][:12]]  # fmt: skip
        return out

    table = [[c.upper() for c in columns], *(cells(r) for r in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join(fmt.format(*row).rstrip() for row in table)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--root",
    type=click.Path(file_okay=False),
    default=None,
    help="project root holding jobs.db (default: $EXPYRE_ROOT, nearest _expyre, ~/.expyre)",
)
@click.pass_context
def cli(ctx: click.Context, root: str | None) -> None:
    """Manage expyre jobs: list them, refresh their state, reset or remove them.

    \b
    Examples:
      xpr ls                          all jobs of this project
      xpr ls --status failed,died -l  failed jobs, with their directories
      xpr sync                        ask the queues about live jobs now
      xpr reset_status --name 'relax.*' -y   resubmit those jobs on the next run
      xpr rm --status processed -y    delete finished jobs and their directories
      xpr rm -c --name test -y        cancel and delete matching jobs
    """
    ctx.obj = _Project(root)


@cli.command("ls")
@_filters
@click.option("-l", "--long", is_flag=True, help="more columns (directories, queue state, key)")
@click.option("--json", "as_json", is_flag=True, help="print JSON (for scripts)")
@click.pass_obj
def ls_command(
    project, id_patterns, name_patterns, status_patterns, system_patterns, long, as_json
):
    """List jobs (oldest first). Status "stale": same call, edited code, not reused."""
    rows = _select(
        project.db(), id_patterns, name_patterns, status_patterns, system_patterns, as_json
    )
    if as_json:
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        click.echo("no matching jobs")
        return
    click.echo(_table(rows, long))
    counts = Counter(r["status"] for r in rows)
    click.echo(f"{len(rows)} job(s): " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


@cli.command("sync")
@_filters
@click.pass_obj
def sync_command(project, id_patterns, name_patterns, status_patterns, system_patterns):
    """Ask the queues about live jobs now and record what finished."""
    from expyre.func import ExPyRe
    from expyre.poll import refresh_jobs

    db = project.db()
    rows = _select(db, id_patterns, name_patterns, status_patterns, system_patterns)
    rows = [r for r in rows if r["status"] in LIVE_STATES]
    jobs = ExPyRe.from_jobsdb(rows, config=project.config())
    refresh_jobs(jobs)
    counts = Counter(j.status for j in jobs)
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"
    click.echo(f"synced {len(jobs)} live job(s); now: {summary}")


def _require_filter(patterns: list) -> None:
    if not any(patterns):
        raise click.UsageError(
            "give at least one filter (--id, --name, --status or --system); "
            "use --name '.*' to mean all jobs"
        )


@cli.command("reset_status")
@_filters
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@click.pass_obj
def reset_status_command(
    project, id_patterns, name_patterns, status_patterns, system_patterns, yes
):
    """Send finished jobs back to "created" so the next run submits them again.

    Live (submitted/started) jobs are skipped: cancel them first with `xpr rm -c` or let
    them finish.
    """
    _require_filter([id_patterns, name_patterns, status_patterns, system_patterns])
    db = project.db()
    rows = _select(db, id_patterns, name_patterns, status_patterns, system_patterns)
    todo = [r for r in rows if r["status"] in RESETTABLE_STATES - LIVE_STATES]
    for r in rows:
        if r not in todo:
            click.echo(f"skipping {r['id']}: it is {r['status']}")
    if not todo:
        click.echo("nothing to reset")
        return
    if not yes:
        click.confirm(f"reset {len(todo)} job(s) to 'created'?", abort=True)
    for r in todo:
        try:
            db.reset(r["id"])
        except IllegalTransition as exc:
            click.echo(f"skipping {r['id']}: {exc}")
    click.echo(f"reset {len(todo)} job(s)")


@cli.command("rm")
@_filters
@click.option("-c", "--cancel", is_flag=True, help="also cancel live (queued/running) jobs")
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@click.pass_obj
def rm_command(project, id_patterns, name_patterns, status_patterns, system_patterns, cancel, yes):
    """Delete jobs: their local and remote directories, then their database rows.

    Live jobs are skipped unless -c cancels them first. A row is only deleted once its
    directories are gone, so nothing is ever left behind untracked.
    """
    from expyre.func import ExPyRe

    _require_filter([id_patterns, name_patterns, status_patterns, system_patterns])
    db = project.db()
    rows = _select(db, id_patterns, name_patterns, status_patterns, system_patterns)
    live = [r for r in rows if r["status"] in LIVE_STATES]
    if live and not cancel:
        for r in live:
            click.echo(f"skipping {r['id']}: it is {r['status']} (use -c to cancel it)")
        rows = [r for r in rows if r["status"] not in LIVE_STATES]
    if not rows:
        click.echo("nothing to remove")
        return
    if not yes:
        click.confirm(f"delete {len(rows)} job(s) and their directories?", abort=True)
    config = project.config()
    removed = 0
    for row in rows:
        job = ExPyRe.from_jobsdb(row, config=config)
        try:
            if row["status"] in LIVE_STATES:
                job.cancel()
            _remove_dirs(job)
        except Exception as exc:  # report and keep the row: its directories may remain
            click.echo(f"kept {row['id']}: could not delete its directories ({exc})", err=True)
            continue
        db.delete(row["id"])
        removed += 1
    click.echo(f"removed {removed} job(s)")


def _remove_dirs(job) -> None:
    from expyre.system import get_system

    remote_dir = job.row["remote_dir"]
    if remote_dir and remote_dir != str(job.stage_dir) and job.system_name:
        get_system(job.system_name, job._config).remove_dir(remote_dir)
    if job.stage_dir.exists():
        shutil.rmtree(job.stage_dir)


@cli.command("db_unlock")
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@click.pass_obj
def db_unlock_command(project, yes):
    """Repair a database left locked by something outside expyre (e.g. a broken NFS lock).

    Copies the database to a fresh file and swaps it in. Only use it when no driver or xpr
    is running on this project.
    """
    path = project.root / "jobs.db"
    project.db()  # clear message if there is none
    conn = sqlite3.connect(path, timeout=2.0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        click.echo(f"{path} is not locked; nothing to do")
        return
    except sqlite3.OperationalError:
        pass
    finally:
        conn.close()
    if not yes:
        click.confirm(f"{path} is locked; copy it to a fresh file and replace it?", abort=True)
    tmp = path.with_name(f".{path.name}.unlock.{os.getpid()}")
    src = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30.0)
    dst = sqlite3.connect(tmp)
    src.backup(dst)
    src.close()
    dst.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    os.replace(tmp, path)
    click.echo(f"replaced {path} with an unlocked copy")


def main() -> None:  # pragma: no cover - console script shim
    """Entry point used by ``python -m expyre.cli``."""
    sys.exit(cli())


if __name__ == "__main__":  # pragma: no cover
    main()
