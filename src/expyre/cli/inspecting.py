"""``xpr show ID`` and ``xpr logs ID``: a window into one job."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import click

from expyre import runner
from expyre.attempts import describe_request, submissions
from expyre.cli._format import duration, when
from expyre.cli._project import Project
from expyre.cli._select import read_rows
from expyre.cli.failures import failure_reason
from expyre.cli.listing import queue_wait, run_time
from expyre.jobsdb import LIVE_STATES

__all__ = [
    "attempt_times",
    "find_job",
    "history",
    "logs_command",
    "script_header",
    "show_command",
    "submission_lines",
]


def find_job(project: Project, job_id: str) -> dict:
    """The row of ``job_id``: an exact id, else the one job whose id starts with it.

    Raises
    ------
    click.ClickException
        When no job, or several jobs, match (the message lists some of them).
    """
    rows = read_rows(
        project.require_db(), keep=lambda r: r["id"] == job_id or r["id"].startswith(job_id)
    )
    exact = [r for r in rows if r["id"] == job_id]
    if exact or len(rows) == 1:
        row = (exact or rows)[0]
        row["info"] = json.loads(row.get("info") or "{}")
        return row
    if not rows:
        raise click.ClickException(
            f"no job {job_id!r} in {project.db_path}; `xpr ls` lists the ids"
        )
    some = ", ".join(r["id"] for r in rows[:5])
    raise click.ClickException(
        f"{len(rows)} jobs start with {job_id!r} ({some}...); give more of the id"
    )


def history(db_path: Path, row: dict) -> list[tuple[float, str, str]]:
    """(unix time s, state, reason) of every recorded state change, oldest first.

    Databases without a state history table give what the row's timestamps tell.
    """
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30.0)
    try:
        out = conn.execute(
            "SELECT at, to_state, COALESCE(reason, '') FROM state_history WHERE job_id = ?"
            " ORDER BY at, rowid",
            (row["id"],),
        ).fetchall()
        if out:
            steps = [tuple(r) for r in out]
            if row.get("started_at") and not any(state == "started" for _, state, _ in steps):
                # it ran between two polls: its start is known from the runner's own marker
                steps.append((row["started_at"], "started", "runner start (between polls)"))
                steps.sort(key=lambda step: step[0])
            return steps
    except sqlite3.OperationalError:
        pass  # a database written before state history was kept
    finally:
        conn.close()
    steps = [(row["created_at"], "created", "")]
    if row.get("submitted_at"):
        steps.append((row["submitted_at"], "submitted", f"submission {row['n_submissions']}"))
    if row.get("started_at"):
        steps.append((row["started_at"], "started", ""))
    if row["status"] not in ("created", "submitted", "started"):
        end = row.get("ended_at") or row["updated_at"]
        steps.append((end, row["status"], row.get("queue_state") or ""))
    return steps


def script_header(stage_dir: Path) -> list[str]:
    """The scheduler header lines of a job script (its leading ``#`` lines, shebang skipped)."""
    try:
        lines = (stage_dir / runner.SCRIPT_FILE).read_text().splitlines()
    except OSError:
        return []
    out = []
    for line in lines[1:] if lines and lines[0].startswith("#!") else lines:
        if not line.startswith("#"):
            break
        out.append(line)
    return out


def submission_lines(subs: list[dict], now: float) -> list[str]:
    """Two lines or so per submission of a job, for ``xpr show`` (see :func:`submissions`)."""
    lines = []
    for sub in subs:
        wait, ran = attempt_times(sub, now)
        where = f"{sub['system'] or '-'} {sub['remote_id'] or '-'}"
        current = "  (current)" if sub["current"] else ""
        lines.append(f"#{sub['number']}  {where}  {describe_request(sub['request'])}{current}")
        lines.append(
            f"    submitted {when(sub['submitted_at'])}, queued {duration(wait)}, ran "
            f"{duration(ran)} -> {sub['outcome']}"
        )
        if sub["decision"]:
            lines.append(f"    then: {sub['decision']}")
    return lines


def attempt_times(sub: dict, now: float) -> tuple[float | None, float | None]:
    """(queued, ran) seconds of one submission; the current one counts up to ``now``."""
    submitted, started, ended = sub["submitted_at"], sub["started_at"], sub["ended_at"]
    live = sub["current"] and sub["outcome"] in LIVE_STATES
    wait = ran = None
    if submitted and (started or live):
        wait = (started or now) - submitted
    if started and (ended or live):
        ran = (ended or now) - started
    return wait, ran


@click.command("show")
@click.argument("job_id")
@click.pass_obj
def show_command(project: Project, job_id: str) -> None:
    """Everything known about one job: states with times, system, script header, dirs, error.

    JOB_ID is a job id or the start of one.
    """
    from expyre.stagedir import read_record

    row = find_job(project, job_id)
    now = time.time()
    stage_dir = Path(row["stage_dir"])
    echo = click.echo
    echo(f"job        {row['id']}")
    echo(f"name       {row['name']}")
    echo(f"status     {row['status']} (recorded {duration(now - row['updated_at'])} ago)")
    remote = f"{row['remote_id'] or '-'}  queue state: {row['queue_state'] or '-'}"
    echo(f"system     {row['system'] or '-'}  remote id: {remote}")
    echo(f"submitted  {row['n_submissions']} time(s)")
    echo(f"times      queued {duration(queue_wait(row, now))}, ran {duration(run_time(row, now))}")
    echo(f"stage dir  {stage_dir}")
    echo(f"remote dir {row['remote_dir'] or '-'}")
    echo(f"key        {row['key']}")
    reason = failure_reason(row)
    if reason:
        echo(f"reason     {reason}")
    subs = submissions(row)
    if subs:
        echo("\nsubmissions (request, times, outcome, what was decided next):")
        for line in submission_lines(subs, now):
            echo(f"  {line}")
    echo("\nstate history:")
    for at, state, why in history(project.db_path, row):
        why = "" if why == state else why
        echo(f"  {when(at)}  {state:<10} {why}".rstrip())
    header = script_header(stage_dir)
    echo("\njob script header (resources):" if header else "\njob script: not written yet")
    for line in header:
        echo(f"  {line}")
    info = row["info"]
    for key in ("input_files", "output_files", "env_vars"):
        if info.get(key):
            echo(f"{key}: {', '.join(info[key])}")
    record = read_record(stage_dir)
    if record is not None and not record.get("ok"):
        echo(f"\nremote exception ({record.get('host', '?')}, while: {record.get('stage')}):")
        echo(f"  {record.get('exception_repr')}")
        echo("remote traceback:")
        for line in (record.get("traceback") or "").rstrip().splitlines():
            echo(f"  {line}")
    elif record is not None:
        echo(f"\nresult written on {record.get('host', '?')} at {when(record.get('finished_at'))}")
    echo(f"\nlogs: `xpr logs {row['id']}` (stdout), `xpr logs {row['id']} --stderr`")


def _remote_tail(row: dict, project: Project, name: str, tail: int | None) -> str:
    """A log file read where the job runs (over ssh for remote systems)."""
    import posixpath

    from expyre.system import get_system

    system = get_system(row["system"], project.config())
    path = posixpath.join(row["remote_dir"], name)
    argv = ["tail", "-n", str(tail), path] if tail else ["cat", path]
    return system.run(argv, what=f"read {name}", retry=False).stdout


@click.command("logs")
@click.argument("job_id")
@click.option("--tail", "-t", "tail", type=click.IntRange(min=1), help="only the last N lines")
@click.option("--stderr", "-e", "stderr", is_flag=True, help="the job's stderr (default stdout)")
@click.pass_obj
def logs_command(project: Project, job_id: str, tail: int | None, stderr: bool) -> None:
    """Print a job's stdout (or --stderr), fetched from where it runs while it is live.

    JOB_ID is a job id or the start of one.
    """
    from expyre.system import SystemCommandError

    row = find_job(project, job_id)
    name = runner.STDERR_FILE if stderr else runner.STDOUT_FILE
    local = Path(row["stage_dir"]) / name
    separate = row["remote_dir"] and row["remote_dir"] != row["stage_dir"] and row["system"]
    if separate and (row["status"] in LIVE_STATES or not local.exists()):
        # a live job's logs grow where it runs; they are copied back only when it ends
        try:
            text = _remote_tail(row, project, name, tail)
        except SystemCommandError as exc:
            raise click.ClickException(
                f"could not read {name} of {row['id']} on {row['system']}: {exc}"
            ) from exc
        click.echo(f"# {row['system']}:{row['remote_dir']}/{name}", err=True)
        click.echo(text, nl=False)
        return
    if not local.exists():
        raise click.ClickException(
            f"{row['id']} has no {name} yet (it is {row['status']}; logs appear once it starts)"
        )
    lines = local.read_text(errors="replace").splitlines(keepends=True)
    click.echo(f"# {local}", err=True)
    click.echo("".join(lines[-tail:] if tail else lines), nl=False)
