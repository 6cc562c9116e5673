"""``xpr rm``: delete jobs, never leaving a job that may still be in a queue without its row.

A job whose row is gone can no longer be watched, cancelled or cleaned, so a job that may
still be queued or running (live, or stale/died while the queue still lists it) is either
cancelled first (``--cancel``) or kept, with a message saying how to remove it.
"""

from __future__ import annotations

import shutil
import sys
import time
from dataclasses import dataclass, field

import click

from expyre.cli._format import print_table
from expyre.cli._project import Project
from expyre.cli._select import filter_options, selection_from
from expyre.jobsdb import LIVE_STATES

__all__ = ["queue_presence", "rm_command"]

# States in which a job has left our view but its queue may still run it: a stale job (its
# code changed, nobody waits for it any more) and a died one (declared dead after a grace).
_MAYBE_QUEUED = frozenset({"stale", "died"})
# How long to wait for a cancelled job to leave its queue before deleting anything, seconds.
CANCEL_WAIT_S = 120.0


@dataclass
class _Plan:
    row: dict
    in_queue: str | None = None  # why it may still be queued, None if certainly not
    notes: list[str] = field(default_factory=list)


def queue_presence(rows: list[dict], config) -> dict[str, str]:
    """For each row that may be in a queue, a text saying so (job id -> text)."""
    from expyre.system import get_system

    present: dict[str, str] = {}
    by_system: dict[str, list[dict]] = {}
    for row in rows:
        if row["status"] in LIVE_STATES:
            where = f"{row['remote_id'] or 'being submitted'}@{row['system'] or '?'}"
            present[row["id"]] = f"it is {row['status']} in the queue ({where})"
        elif (
            row["status"] in _MAYBE_QUEUED
            and row["remote_id"]
            and row["system"]
            # a packed chunk's allocations also run other chunks: the queue cannot say
            # whether this one runs (its claim does; see expyre.packing)
            and not row["remote_id"].startswith("pack:")
        ):
            by_system.setdefault(row["system"], []).append(row)
    for name, group in by_system.items():
        try:
            states = get_system(name, config).queue_states([r["remote_id"] for r in group])
        except Exception as exc:  # unreachable queue: we cannot know, so assume the worst
            for r in group:
                present[r["id"]] = f"system {name!r} could not be asked about it ({exc})"
            continue
        for r in group:
            state = states.get(r["remote_id"])
            if state is not None and not state.is_finished:
                present[r["id"]] = (
                    f"it is {r['status']} here but still {state.value} in the queue "
                    f"({r['remote_id']}@{name})"
                )
    return present


def _cancel_and_wait(row: dict, config) -> None:
    """Cancel one job in its queue and wait until the queue no longer runs it.

    Raises
    ------
    RuntimeError
        If the job is still in the queue after :data:`CANCEL_WAIT_S`.
    """
    from expyre.func import ExPyRe
    from expyre.system import get_system

    job = ExPyRe.from_jobsdb(row, config=config)[0]
    system = get_system(row["system"], config)
    deadline = time.monotonic() + CANCEL_WAIT_S
    while True:
        try:
            if job.refresh().status in LIVE_STATES:
                job.cancel()  # records it as died ("cancelled") too
            elif job.remote_id:
                system.cancel([job.remote_id])
            break
        except Exception:
            # a scheduler may refuse to cancel a job that is just starting or ending (SGE
            # says "does not exist" while still listing it): look again, retry a while
            rid = job.remote_id
            state = system.queue_states([rid]).get(rid) if rid else None
            if state is None or state.is_finished:
                break
            if time.monotonic() > deadline:
                raise
            time.sleep(2.0)
    remote_id = job.refresh().remote_id
    if not remote_id:
        return
    while True:
        state = system.queue_states([remote_id]).get(remote_id)
        if state is None or state.is_finished:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"still {state.value} in the queue after cancelling it")
        time.sleep(1.0)


def _remove_dirs(row: dict, config, project_id: str) -> None:
    from pathlib import Path

    from expyre.system import get_system

    stage_dir = Path(row["stage_dir"])
    remote_dir = row["remote_dir"]
    if remote_dir and remote_dir != str(stage_dir) and row["system"]:
        get_system(row["system"], config).remove_dir(remote_dir, project_id)
    if stage_dir.exists():
        shutil.rmtree(stage_dir)


def _forget_items_of(project: Project, removed: list[dict]) -> int:
    """Forget removed jobs in the item store; drop the items stale ones computed.

    Items of other jobs stay: the item store outlives the jobs that filled it (``xpr items
    rm`` drops items). A stale job's items were made by code since edited, so no run can
    reuse them. Returns how many items were dropped.
    """
    if not removed:
        return 0
    from expyre.itemstore import ITEMS_DB_NAME, ItemStore

    store = ItemStore(project.root / ITEMS_DB_NAME)
    dropped = store.drop(job_ids=[r["id"] for r in removed if r["status"] == "stale"])
    store.forget_jobs(r["id"] for r in removed)
    return dropped


def _action(plan: _Plan, clean: bool) -> str:
    steps = ["cancel"] if plan.in_queue else []
    steps.append("delete row" + (" + dirs" if clean else " (keep dirs)"))
    return ", ".join(steps)


@click.command("rm")
@filter_options()
@click.option("-y", "--yes", is_flag=True, help="assume 'yes' for all confirmations (do not ask)")
@click.option("-c", "--clean", is_flag=True, help="delete local and remote stage directories too")
@click.option(
    "--cancel",
    is_flag=True,
    help="cancel jobs that may still be queued or running, then remove them "
    "(without it such jobs are kept)",
)
@click.option("--dry-run", is_flag=True, help="show what would be removed; change nothing")
@click.pass_obj
def rm_command(project: Project, yes, clean, cancel, dry_run, **filters):
    """Delete jobs fitting criteria (at least one criterion required).

    \b
    Shows what it will remove, then asks (unless -y). Without -c only the database
    rows go and the directories stay (listed); with -c the local and remote
    directories are deleted first, and a row whose directories could not be deleted
    is kept. A job that may still be queued or running is never removed unless
    --cancel cancels it first. Exit status 1 when any selected job was kept.
    """
    selection = selection_from(filters)
    if selection.empty:
        raise click.UsageError(
            "give at least one criterion (-i/--id, -n/--name, -s/--status, -S/--system); "
            "use -s '*' to mean all jobs"
        )
    rows = selection.rows(project.require_db())
    if not rows:
        click.echo("no matching jobs; nothing to remove")
        return
    config = project.config()
    presence = queue_presence(rows, config)
    plans = [_Plan(r, presence.get(r["id"])) for r in rows]
    refused = [p for p in plans if p.in_queue and not cancel]
    todo = [p for p in plans if not (p.in_queue and not cancel)]
    for p in refused:
        click.echo(
            f"keeping {p.row['id']}: {p.in_queue}; to remove it, cancel it with "
            f"`xpr rm --cancel -i {p.row['id']}{' -c' if clean else ''}` (or wait until it "
            "has finished)",
            err=True,
        )
    if not todo:
        click.echo("nothing to remove", err=True)
        sys.exit(1)
    click.echo(f"{'would remove' if dry_run else 'will remove'} {len(todo)} job(s):")
    print_table(
        ["ID", "NAME", "STATUS", "ACTION", "STAGE_DIR"],
        [
            [p.row["id"], p.row["name"], p.row["status"], _action(p, clean), p.row["stage_dir"]]
            for p in todo
        ],  # fmt: skip
        shrink=[4, 1, 0],
    )
    if dry_run:
        sys.exit(1 if refused else 0)
    if not yes and not click.confirm(f"remove these {len(todo)} job(s)?"):
        click.echo("nothing removed", err=True)
        sys.exit(1)
    db = project.db()
    kept = len(refused)
    removed = []
    for plan in todo:
        row = db.get(plan.row["id"])
        if row is None:
            continue  # removed by someone else meanwhile: nothing of it is left to track
        if row["status"] != plan.row["status"] and not plan.in_queue:
            # it moved since we looked (a driver submitted it?): look again before touching it
            if row["status"] in LIVE_STATES and not cancel:
                click.echo(f"keeping {row['id']}: it became {row['status']} meanwhile", err=True)
                kept += 1
                continue
            plan.in_queue = plan.in_queue or ("live" if row["status"] in LIVE_STATES else None)
        try:
            if plan.in_queue:
                _cancel_and_wait(row, config)
            if clean:
                _remove_dirs(row, config, db.project_id)
        except Exception as exc:  # report and keep the row: nothing may be left untracked
            click.echo(f"keeping {row['id']}: {exc}", err=True)
            kept += 1
            continue
        db.delete(row["id"])
        removed.append(row)
    dropped = _forget_items_of(project, removed)
    click.echo(
        f"removed {len(removed)} job(s)"
        + (f", kept {kept}" if kept else "")
        + (f"; dropped {dropped} stored item(s) of stale jobs (code changed)" if dropped else "")
    )
    if removed and not clean:
        click.echo(
            "their directories were kept (use -c to delete them too), e.g. "
            + removed[0]["stage_dir"]
        )
    if kept:
        sys.exit(1)
