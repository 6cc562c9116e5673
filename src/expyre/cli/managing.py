"""``xpr sync``, ``reset_status``, ``fail_job``, ``create_job`` and ``db_unlock``."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path

import click

from expyre.atomicfile import write_atomic
from expyre.cli._project import Project
from expyre.cli._select import filter_options, selection_from
from expyre.cli.removing import queue_presence
from expyre.jobsdb import ALLOWED_TRANSITIONS, LIVE_STATES, STATES, IllegalTransition

__all__ = [
    "create_job_command",
    "db_unlock_command",
    "fail_job_command",
    "reset_status_command",
    "sync_command",
]


def _summary(statuses) -> str:
    counts = Counter(statuses)
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none"


@click.command("sync")
@filter_options(status_default="ongoing")
@click.option(
    "-d",
    "--delete",
    is_flag=True,
    help="accepted for compatibility; not needed: syncing always replaces the local result "
    "and log files with the remote ones",
)
@click.option("-v", "--verbose", is_flag=True, help="one line per job whose state changed")
@click.pass_obj
def sync_command(project: Project, delete, verbose, **filters):
    """Sync remote status and results for jobs fitting criteria (default: ongoing jobs)."""
    from expyre.func import ExPyRe
    from expyre.poll import refresh_jobs

    selection = selection_from(filters)
    rows = [r for r in selection.rows(project.require_db()) if r["status"] in LIVE_STATES]
    before = {r["id"]: r["status"] for r in rows}
    jobs = ExPyRe.from_jobsdb(rows, config=project.config())
    refresh_jobs(jobs)
    if verbose:
        for job in jobs:
            if job.status != before[job.id]:
                click.echo(f"{job.id}: {before[job.id]} -> {job.status}")
    click.echo(f"synced {len(jobs)} live job(s); now: {_summary(j.status for j in jobs)}")


@click.command("reset_status")
@filter_options()
@click.argument("new_status", required=False, type=click.Choice(STATES))
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@click.pass_obj
def reset_status_command(project: Project, new_status, yes, **filters):
    """Reset local status of jobs (default NEW_STATUS: created = run again).

    \b
    "created" makes the next run of the workflow submit the job again. Other values
    are set only where the state machine allows them from the job's current state.
    Live (submitted/started) jobs are never sent back to "created": cancel them
    first (`xpr rm --cancel`) or let them finish.
    With NEW_STATUS given (the first xpr's form) no filter is needed and nothing is
    asked; without it, give a filter, and confirm unless -y.
    """
    selection = selection_from(filters)
    reference_form = new_status is not None
    if selection.empty and not reference_form:
        raise click.UsageError(
            "give at least one filter (-i/--id, -n/--name, -s/--status, -S/--system); "
            "use -s '*' to mean all jobs"
        )
    new_status = new_status or "created"
    db = project.db()
    rows = selection.rows(project.require_db())
    # an ended job its queue still runs must not be submitted again beside itself
    in_queue = queue_presence(
        [r for r in rows if new_status == "created" and r["status"] not in LIVE_STATES],
        project.config(),
    )
    todo, skipped = [], 0
    for r in rows:
        if r["status"] == new_status:
            continue
        if new_status == "created" and r["status"] in LIVE_STATES:
            click.echo(f"skipping {r['id']}: it is {r['status']} (cancel it first)", err=True)
            skipped += 1
        elif r["id"] in in_queue:
            click.echo(
                f"skipping {r['id']}: {in_queue[r['id']]}; wait until it ends, or stop it "
                f"with `xpr rm --cancel -i {r['id']}`",
                err=True,
            )
            skipped += 1
        elif new_status != "created" and new_status not in ALLOWED_TRANSITIONS[r["status"]]:
            allowed = sorted(ALLOWED_TRANSITIONS[r["status"]]) or ["none"]
            click.echo(
                f"skipping {r['id']}: {r['status']} -> {new_status} is not allowed "
                f"(allowed: {', '.join(allowed)})",
                err=True,
            )
            skipped += 1
        else:
            todo.append(r)
    if not todo:
        click.echo("nothing to reset")
        sys.exit(1 if skipped else 0)
    if not yes and not reference_form:
        click.confirm(f"reset {len(todo)} job(s) to {new_status!r}?", abort=True)
    done = 0
    for r in todo:
        try:
            if new_status == "created":
                db.reset(r["id"])
            else:
                # the user's explicit choice of state: any kind of move the table allows
                db.transition(r["id"], new_status, expect=[r["status"]], move=None)
            done += 1
        except IllegalTransition as exc:
            click.echo(f"skipping {r['id']}: {exc}", err=True)
            skipped += 1
    click.echo(f"reset {done} job(s) to {new_status!r}")
    if skipped:
        sys.exit(1)


@click.command("fail_job")
@filter_options()
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@click.pass_obj
def fail_job_command(project: Project, yes, **filters):
    """Mark queued or running jobs as failed (cancelling them in their queue).

    The job's result becomes the error "marked as failed by xpr fail_job", so the
    workflow that waits for it goes on (and reports it as a failure).
    """
    from expyre import runner
    from expyre.system import get_system

    selection = selection_from(filters)
    if selection.empty:
        raise click.UsageError("give at least one filter; use -s '*' to mean all jobs")
    db = project.db()
    rows = selection.rows(project.require_db())
    todo = [r for r in rows if r["status"] in LIVE_STATES]
    for r in rows:
        if r["status"] not in LIVE_STATES:
            click.echo(f"skipping {r['id']}: it is {r['status']}, not queued or running", err=True)
    if not todo:
        click.echo("nothing to fail")
        sys.exit(1 if rows else 0)
    if not yes:
        click.confirm(f"cancel and mark {len(todo)} job(s) as failed?", abort=True)
    config = project.config()
    for r in todo:
        if r["remote_id"] and r["system"]:
            try:
                get_system(r["system"], config).cancel([r["remote_id"]])
            except Exception as exc:  # finished meanwhile, or unreachable: say so, go on
                click.echo(f"{r['id']}: cancelling in the queue failed ({exc})", err=True)
        record = runner.failure_record(RuntimeError("marked as failed by xpr fail_job"), "call")
        import pickle

        write_atomic(Path(r["stage_dir"]) / runner.RESULT_FILE, pickle.dumps(record))
        try:
            db.transition(r["id"], "failed", expect=LIVE_STATES, queue_state="cancelled")
            click.echo(f"failed {r['id']}")
        except IllegalTransition as exc:
            click.echo(f"skipping {r['id']}: {exc}", err=True)


@click.command("create_job")
@click.option(
    "-d",
    "--from_dir",
    "from_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="local stage directory of job to create",
)
@click.option("-S", "--system", required=True, help="system of job to create")
@click.option("-i", "--id", "job_id", help="id of job to create (default: from the directory)")
@click.option("-n", "--name", help="name of job to create (default: from the directory)")
@click.pass_obj
def create_job_command(project: Project, from_dir: Path, system, job_id, name):
    """Create a job database entry manually, for a stage directory that lost its row.

    The state comes from the directory: succeeded or failed when it holds a result,
    else created. The row is never reused by a workflow (its call is not known).
    """
    from expyre import runner
    from expyre.stagedir import read_record

    config = project.config()
    if system not in config.systems:
        _unknown_system(system, config)
    from_dir = from_dir.resolve()
    try:
        meta = json.loads((from_dir / runner.META_FILE).read_text())
    except (OSError, ValueError):
        meta = {}
    job_id = job_id or meta.get("job_id") or from_dir.name
    name = name or meta.get("name") or job_id
    record = read_record(from_dir)
    status = "created" if record is None else ("succeeded" if record.get("ok") else "failed")
    db = project.db()
    if db.get(job_id) is not None:
        raise click.ClickException(f"job {job_id!r} already exists; pick another --id")
    db.add_manual(
        job_id,
        name=name,
        stage_dir=from_dir,
        system=system,
        status=status,
        info={"staged": (from_dir / runner.CALL_FILE).exists(), "created_by": "xpr"},
    )
    click.echo(f"created job {job_id} ({name}, {status}) for {from_dir}")


def _unknown_system(system: str, config) -> None:
    raise click.BadParameter(
        f"system {system!r} is not in the config; known: {', '.join(sorted(config.systems))}",
        param_hint="'-S' / '--system'",
    )


@click.command("db_unlock")
@click.option("-y", "--yes", is_flag=True, help="do not ask for confirmation")
@click.pass_obj
def db_unlock_command(project: Project, yes):
    """Unlock the database if it is stuck in a locked state.

    Copies the database to a fresh file and swaps it in. Only use it when no driver
    or xpr is running on this project.
    """
    path = project.require_db()
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
    click.echo(f"replaced {path} with an unlocked copy at {time.strftime('%H:%M:%S')}")
