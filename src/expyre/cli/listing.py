"""``xpr ls``: the jobs of a project as a table, a summary, a failures view or JSON."""

from __future__ import annotations

import json
import time
from collections import Counter

import click

from expyre.cli._format import duration, echo_wrapped, print_table, when
from expyre.cli._project import Project
from expyre.cli._select import Selection, filter_options, selection_from
from expyre.dbpaths import PATH_INFO_KEYS, to_absolute
from expyre.jobsdb import LIVE_STATES

__all__ = ["ls_command", "queue_wait", "run_time"]

#: without filters, a project with more jobs than this is shown as a summary (``--all`` lists)
SUMMARY_ABOVE = 1000


def queue_wait(row: dict, now: float) -> float | None:
    """Seconds between submission and start (or until now, while still waiting)."""
    submitted = row.get("submitted_at")
    if not submitted:
        return None
    started = row.get("started_at")
    if started:
        return started - submitted
    if row["status"] == "submitted":
        return now - submitted
    return None


def run_time(row: dict, now: float) -> float | None:
    """Seconds between start and end (or until now, while running)."""
    started = row.get("started_at")
    if not started:
        return None
    ended = row.get("ended_at")
    if ended:
        return ended - started
    return now - started if row["status"] == "started" else None


def _cells(row: dict, now: float, long: bool) -> list[str]:
    remote = row["remote_id"] or "-"
    out = [
        row["id"],
        row["name"],
        row["status"],
        f"{remote}@{row['system'] or '-'}",
        duration(now - row["updated_at"]) if row["updated_at"] else "-",
        duration(queue_wait(row, now)),
        duration(run_time(row, now)),
    ]
    if long:
        out += [
            when(row["created_at"]),
            row["queue_state"] or "-",
            str(row["n_submissions"]),
            row["stage_dir"],
            row["remote_dir"] or "-",
        ]
    return out


# what the table needs: reading only these keeps long listings of big projects fast
_COLUMNS = ["id", "name", "status", "system", "remote_id", "created_at", "updated_at",
            "submitted_at", "started_at", "ended_at"]  # fmt: skip
_LONG_COLUMNS = [*_COLUMNS, "queue_state", "n_submissions", "stage_dir", "remote_dir"]

HEADER = ["ID", "NAME", "STATUS", "REMOTE_ID@SYS", "SINCE", "QUEUED", "RAN"]
LONG_HEADER = [*HEADER, "CREATED", "QUEUE_STATE", "N_SUB", "STAGE_DIR", "REMOTE_DIR"]


def _freshness(rows: list[dict], now: float) -> str:
    """How old the shown states are: live states only change when somebody asks the queue."""
    live = [r["updated_at"] for r in rows if r["status"] in LIVE_STATES and r["updated_at"]]
    if not live:
        return "no job shown is queued or running: these states no longer change by themselves"
    return (
        f"states as last recorded: {len(live)} live job(s), recorded {duration(now - max(live))} "
        f"to {duration(now - min(live))} ago; a running driver or `xpr sync` asks the queues"
    )


def _counts_line(counts: Counter) -> str:
    return ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))


@click.command("ls")
@filter_options()
@click.option("-l", "--long-output", "long", is_flag=True, help="long format output")
@click.option("--all", "show_all", is_flag=True, help="list every row even of a big project")
@click.option("--summary", is_flag=True, help="counts by status and name instead of rows")
@click.option("--failures", is_flag=True, help="failed and died jobs with one reason each")
@click.option("--json", "as_json", is_flag=True, help="print JSON (for scripts)")
@click.pass_obj
def ls_command(project: Project, long, show_all, summary, failures, as_json, **filters):
    """List jobs fitting criteria (default all jobs), oldest first.

    \b
    Columns: SINCE = age of the recorded state, QUEUED = wait in the queue,
    RAN = run time. Status "stale": same call, edited code, never reused.
    Projects with more than 1000 jobs show a summary unless filtered or --all.
    """
    selection = selection_from(filters)
    db_path = project.require_db()
    if failures:
        from expyre.cli.failures import print_failures

        if selection.statuses is None:
            selection.statuses = frozenset({"failed", "died"})
        print_failures(project, selection.rows(db_path))
        return
    if summary or (selection.empty and not show_all and not as_json and _big(db_path)):
        _print_summary(project, selection)
        return
    rows = selection.rows(db_path, None if as_json else _LONG_COLUMNS if long else _COLUMNS)
    if as_json:
        root = db_path.resolve().parent
        for r in rows:
            r["info"] = json.loads(r.get("info") or "{}")
            for key in PATH_INFO_KEYS:
                if r["info"].get(key):
                    r["info"][key] = to_absolute(r["info"][key], root)
        click.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        click.echo(f"no matching jobs in {db_path}")
        return
    now = time.time()
    header = LONG_HEADER if long else HEADER
    print_table(header, [_cells(r, now, long) for r in rows], shrink=[10, 11, 1, 3])
    counts = Counter(r["status"] for r in rows)
    echo_wrapped(f"{len(rows)} job(s): {_counts_line(counts)}")
    echo_wrapped(_freshness(rows, now))


def _big(db_path) -> bool:
    import sqlite3

    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30.0)
    try:
        # "LIMIT" keeps this cheap however big the table is
        n = conn.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM jobs LIMIT {SUMMARY_ABOVE + 1})")
        return n.fetchone()[0] > SUMMARY_ABOVE
    finally:
        conn.close()


def _print_summary(project: Project, selection: Selection) -> None:
    """Counts by status and by name, from sqlite's indexes (fast on any number of jobs)."""
    import sqlite3

    conn = sqlite3.connect(f"file:{project.db_path}?mode=ro", uri=True, timeout=30.0)
    try:
        where, params = "", []
        if selection.statuses is not None:
            params = sorted(selection.statuses)
            where = f"WHERE status IN ({','.join('?' * len(params))})"
        by_status = conn.execute(
            f"SELECT status, COUNT(*) FROM jobs {where} GROUP BY status", params
        ).fetchall()
        by_name = conn.execute(
            f"SELECT name, COUNT(*) FROM jobs {where} GROUP BY name ORDER BY COUNT(*) DESC",
            params,
        ).fetchall()
        live = conn.execute(
            "SELECT MIN(updated_at), MAX(updated_at), COUNT(*) FROM jobs"
            " WHERE status IN ('submitted', 'started')"
        ).fetchone()
    finally:
        conn.close()
    now = time.time()
    total = sum(n for _, n in by_status)
    click.echo(f"{total} jobs in {project.db_path}")
    print_table(["STATUS", "JOBS"], [[s, str(n)] for s, n in sorted(by_status)], shrink=[])
    shown = by_name[:20]
    print_table(["NAME", "JOBS"], [[name, str(n)] for name, n in shown], shrink=[0])
    if len(by_name) > len(shown):
        click.echo(f"... and {len(by_name) - len(shown)} more names")
    oldest, newest, n_live = live
    if n_live:
        echo_wrapped(
            f"states as last recorded: {n_live} live job(s), recorded {duration(now - newest)} "
            f"to {duration(now - oldest)} ago; a running driver or `xpr sync` asks the queues"
        )
    echo_wrapped("list rows with filters (e.g. `xpr ls -s failed`) or `xpr ls --all`")
