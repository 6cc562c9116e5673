"""``xpr report -o jobs.html``: one self-contained HTML page about a project's jobs.

The page needs no network and no other file: styles and the small table-sorting script are
inline, and the timeline is a matplotlib figure embedded as inline SVG (text stays text, so
it is searchable and sharp at any zoom).
"""

from __future__ import annotations

import html
import io
import json
import time
from collections import Counter
from pathlib import Path

import click

from expyre.attempts import describe_request, submissions
from expyre.cli._format import duration, when
from expyre.cli._project import Project
from expyre.cli._select import filter_options, selection_from
from expyre.cli.failures import failure_reason, log_tail
from expyre.cli.inspecting import attempt_times
from expyre.cli.listing import queue_wait, run_time
from expyre.jobsdb import LIVE_STATES

__all__ = ["attempts_table", "render_report", "report_command", "timeline_svg"]

#: timeline and table sizes: beyond these the page shows the most recent jobs (and says so)
TIMELINE_MAX_JOBS = 200
TABLE_MAX_ROWS = 5000
LOG_TAIL_LINES = 15
FAILURES_MAX = 500

OUTCOME_COLOURS = {
    "succeeded": "#2e7d32",
    "processed": "#2e7d32",
    "failed": "#c62828",
    "died": "#ef6c00",
    "started": "#1565c0",
    "submitted": "#9e9e9e",
    "created": "#bdbdbd",
    "stale": "#8e24aa",
    "cleaned": "#757575",
}
QUEUED_COLOUR = "#cfd8dc"

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border-bottom: 1px solid #ddd; padding: 2px 8px; text-align: left; white-space: nowrap; }
th { background: #f3f3f3; cursor: pointer; user-select: none; }
th.sorted-asc::after { content: " \\25B2"; } th.sorted-desc::after { content: " \\25BC"; }
.badge { display: inline-block; padding: 0 6px; border-radius: 3px; color: #fff; }
.failure { border-left: 4px solid #c62828; padding: 4px 10px; margin: 10px 0; background: #fff8f8; }
pre { background: #f6f6f6; padding: 6px; overflow-x: auto; font-size: 0.8em; }
.note { color: #666; font-size: 0.85em; }
td.reason { white-space: normal; min-width: 10em; }
table.attempts { margin: 4px 0 10px 0; }
table.attempts td.decision { white-space: normal; min-width: 20em; }
.attempts-of { margin-top: 10px; }
#timeline svg { max-width: 100%; height: auto; }
"""

# Sorting: a click on a header sorts by that column (numbers by their data-sort value), a
# second click reverses. "#sort=COLUMN" or "#sort=-COLUMN" in the URL sorts on load, so a
# link can open the page already sorted.
_SCRIPT = """
(function () {
  var table = document.getElementById('jobs-table');
  if (!table) return;
  var heads = table.tHead.rows[0].cells;
  function sortBy(index, descending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[index].getAttribute('data-sort') || a.cells[index].textContent;
      var y = b.cells[index].getAttribute('data-sort') || b.cells[index].textContent;
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return descending ? -c : c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    for (var i = 0; i < heads.length; i++) heads[i].className = '';
    heads[index].className = descending ? 'sorted-desc' : 'sorted-asc';
    table.setAttribute('data-sorted-by', heads[index].getAttribute('data-key') +
                       (descending ? ':desc' : ':asc'));
  }
  for (var i = 0; i < heads.length; i++) {
    (function (index) {
      heads[index].addEventListener('click', function () {
        sortBy(index, heads[index].className === 'sorted-asc');
      });
    })(i);
  }
  var m = /sort=(-?)([a-z_]+)/.exec(window.location.hash);
  if (m) {
    for (var j = 0; j < heads.length; j++) {
      if (heads[j].getAttribute('data-key') === m[2]) sortBy(j, m[1] === '-');
    }
  }
})();
"""


def timeline_svg(rows: list[dict], now: float) -> str:
    """Every submission's queued and running intervals as horizontal bars (inline SVG text).

    A job's row holds all its submissions, oldest first, so a resubmission (a failure
    policy's more time, a rerun of a killed job) shows beside the attempt it followed. Each
    bar's SVG group has the id ``<job id>:<submission>:queued`` or ``...:ran``.

    Parameters
    ----------
    rows : list of dict
        Jobs-database rows (oldest first).
    now : float
        Unix time (s) that ends the intervals of jobs still waiting or running.
    """
    import matplotlib

    matplotlib.use("Agg")  # no display: render to a file-like object only
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    shown = [r for r in rows if r.get("submitted_at")][-TIMELINE_MAX_JOBS:]
    bars = {r["id"]: _timeline_bars(r, now) for r in shown}
    height = max(2.0, 0.22 * len(shown) + 1.2)
    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 8}):
        fig = Figure(figsize=(10, height))
        ax = fig.add_subplot()
        starts = [bar[1] for job_bars in bars.values() for bar in job_bars]
        t0 = min(starts, default=now)
        for y, r in enumerate(shown):
            for gid, begin, end, colour in bars[r["id"]]:
                ax.barh(y, max(end - begin, 0.0), left=begin - t0, color=colour, height=0.7,
                        gid=gid)  # fmt: skip
        ax.set_yticks(range(len(shown)), [r["name"] for r in shown])
        ax.invert_yaxis()
        ax.set_xlabel(f"seconds since the first submission ({when(t0)})")
        legend = [Patch(color=QUEUED_COLOUR, label="queued")] + [
            Patch(color=OUTCOME_COLOURS[s], label=f"ran: {s}")
            for s in ("succeeded", "failed", "died", "started", "stale")
        ]
        # beside the plot, not over the bars of the last jobs
        ax.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg")
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]  # drop the XML prolog: the SVG is inlined into HTML


def _timeline_bars(row: dict, now: float) -> list[tuple[str, float, float, str]]:
    """(svg id, start, end, colour) of each queued and running interval of a job (unix s)."""
    bars = []
    for sub in submissions(row):
        submitted = sub["submitted_at"]
        if not submitted:
            continue  # written before submission times were kept
        status = sub["outcome"].split(" ")[0]
        started = sub["started_at"]
        live = sub["current"] and status in LIVE_STATES
        # an interval with no recorded end ends at the job's last update (or now, if live)
        last = now if live else (row["updated_at"] if sub["current"] else None)
        ended = sub["ended_at"] or last or started or submitted
        queued_until = started or (now if live and status == "submitted" else ended)
        prefix = f"{row['id']}:{sub['number']}"
        bars.append((f"{prefix}:queued", submitted, queued_until, QUEUED_COLOUR))
        if started:
            colour = OUTCOME_COLOURS.get(status, "#555")
            bars.append((f"{prefix}:ran", started, ended, colour))
    return bars


def _cell(text: str, sort_key: float | str | None = None, css_class: str | None = None) -> str:
    attr = f' data-sort="{html.escape(str(sort_key))}"' if sort_key is not None else ""
    attr += f' class="{css_class}"' if css_class else ""
    return f"<td{attr}>{html.escape(text)}</td>"


def attempts_table(row: dict, now: float) -> str:
    """Every submission of a job as an HTML table: request, times, outcome, what came next."""
    esc = html.escape
    head = ["#", "system", "queue id", "request", "submitted", "queued", "ran", "outcome",
            "then"]  # fmt: skip
    parts = [
        f'<table class="attempts" data-job-id="{esc(row["id"])}"><thead><tr>'
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr></thead><tbody>"
    ]
    for sub in submissions(row):
        wait, ran = attempt_times(sub, now)
        current = ' data-current="1"' if sub["current"] else ""
        parts.append(
            f'<tr data-submission="{sub["number"]}"{current}>'
            + _cell(str(sub["number"]))
            + _cell(sub["system"] or "-")
            + _cell(sub["remote_id"] or "-")
            + _cell(describe_request(sub["request"]))
            + _cell(when(sub["submitted_at"]))
            + _cell(duration(wait))
            + _cell(duration(ran))
            + _cell(sub["outcome"] + (" (current)" if sub["current"] else ""))
            + _cell(sub["decision"] or "-", css_class="decision")
            + "</tr>"
        )
    parts.append("</tbody></table>")
    return "".join(parts)


def _tried_again(row: dict) -> bool:
    """True for a job submitted more than once, or with a recorded decision (a split)."""
    return row["n_submissions"] > 1 or bool((row.get("info") or {}).get("attempts"))


def render_report(project: Project, rows: list[dict], now: float | None = None) -> str:
    """The whole HTML page for ``rows`` (jobs-database rows, oldest first)."""
    from expyre import __version__

    now = now or time.time()
    esc = html.escape
    counts = Counter(r["status"] for r in rows)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>expyre jobs: {esc(str(project.root))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>Jobs of {esc(str(project.root))}</h1>",
        f'<p class="note">{len(rows)} job(s); written {esc(when(now))} by xpr {esc(__version__)}'
        "; states as last recorded by a driver or <code>xpr sync</code>.</p>",
        '<h2>Counts by state</h2><table id="counts"><tbody>',
    ]
    for status, n in sorted(counts.items()):
        colour = OUTCOME_COLOURS.get(status, "#555")
        parts.append(
            f'<tr data-status="{esc(status)}"><td><span class="badge" style="background:'
            f'{colour}">{esc(status)}</span></td><td>{n}</td></tr>'
        )
    parts.append("</tbody></table>")

    failures = [r for r in rows if r["status"] in ("failed", "died")]
    reasons = {r["id"]: failure_reason(r) for r in failures}  # each reads a result file
    parts.append(f'<h2>Failures ({len(failures)})</h2><div id="failures">')
    if not failures:
        parts.append('<p class="note">none</p>')
    if len(failures) > FAILURES_MAX:
        parts.append(
            f'<p class="note">the {FAILURES_MAX} most recent with their logs; every one has '
            "its reason in the table below</p>"
        )
    for r in failures[-FAILURES_MAX:]:
        tail = log_tail(r, LOG_TAIL_LINES)
        parts.append(
            f'<div class="failure" data-job-id="{esc(r["id"])}"><b>{esc(r["id"])}</b> '
            f"({esc(r['name'])}, {esc(r['status'])}, {esc(r['system'] or '-')})<br>"
            f'<span class="reason">{esc(reasons[r["id"]] or "no reason recorded")}</span>'
            + (attempts_table(r, now) if _tried_again(r) else "")
            + (f"<pre>{esc(tail)}</pre>" if tail else '<p class="note">no stderr</p>')
            + "</div>"
        )
    parts.append("</div>")

    # every job that ran more than once, also those that succeeded in the end: what each
    # submission asked for, how it ended, and what a failure policy (or a user) did next
    retried = [r for r in rows if _tried_again(r)]
    parts.append(f'<h2>Jobs run more than once ({len(retried)})</h2><div id="attempts">')
    if not retried:
        parts.append('<p class="note">none</p>')
    for r in retried[-FAILURES_MAX:]:
        parts.append(
            f'<div class="attempts-of" data-job-id="{esc(r["id"])}"><b>{esc(r["id"])}</b> '
            f"({esc(r['name'])}, now {esc(r['status'])}, {r['n_submissions']} submission(s))"
            + attempts_table(r, now)
            + "</div>"
        )
    parts.append("</div>")

    parts.append('<h2>Timeline</h2><div id="timeline">')
    if any(r.get("submitted_at") for r in rows):
        timed = sum(1 for r in rows if r.get("submitted_at"))
        if timed > TIMELINE_MAX_JOBS:
            parts.append(f'<p class="note">the {TIMELINE_MAX_JOBS} most recent of {timed}</p>')
        parts.append(timeline_svg(rows, now))
    else:
        parts.append('<p class="note">no job was submitted yet</p>')
    parts.append("</div>")

    table_rows = rows[-TABLE_MAX_ROWS:]
    parts.append(f"<h2>Jobs ({len(rows)})</h2>")
    if len(rows) > len(table_rows):
        parts.append(f'<p class="note">the {len(table_rows)} most recent of {len(rows)}</p>')
    columns = [("id", "id"), ("name", "name"), ("status", "status"), ("system", "system"),
               ("remote_id", "remote id"), ("created", "created"), ("queued", "queued"),
               ("ran", "ran"), ("tries", "tries"), ("reason", "reason")]  # fmt: skip
    parts.append('<table id="jobs-table"><thead><tr>')
    parts += [f'<th data-key="{key}">{label}</th>' for key, label in columns]
    parts.append("</tr></thead><tbody>")
    for r in table_rows:
        wait, ran = queue_wait(r, now), run_time(r, now)
        parts.append(
            f'<tr data-job-id="{esc(r["id"])}" data-status="{esc(r["status"])}">'
            + _cell(r["id"])
            + _cell(r["name"])
            + _cell(r["status"])
            + _cell(r["system"] or "-")
            + _cell(r["remote_id"] or "-")
            + _cell(when(r["created_at"]), r["created_at"])
            + _cell(duration(wait), -1 if wait is None else round(wait, 3))
            + _cell(duration(ran), -1 if ran is None else round(ran, 3))
            + _cell(str(r["n_submissions"]), r["n_submissions"])
            + _cell(reasons.get(r["id"], ""), css_class="reason")
            + "</tr>"
        )
    parts.append("</tbody></table>")
    parts.append(f"<script>{_SCRIPT}</script></body></html>")
    return "\n".join(parts)


@click.command("report")
@filter_options()
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="HTML file to write (e.g. jobs.html)",
)
@click.pass_obj
def report_command(project: Project, output: Path, **filters) -> None:
    """Write one self-contained HTML page: counts, failures, attempts, timeline, jobs.

    The page opens without network access; click a column header to sort the table.
    """
    selection = selection_from(filters)
    rows = selection.rows(project.require_db())
    for r in rows:
        r["info"] = json.loads(r.get("info") or "{}")
    page = render_report(project, rows)
    tmp = output.with_name(f".{output.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(output)  # a reader never sees half a page
    click.echo(f"wrote {output} ({len(rows)} jobs, {len(page) // 1024} kB)")
