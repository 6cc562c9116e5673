"""Why a job failed, in one line, from what the job left behind (used by ls, show, report)."""

from __future__ import annotations

from pathlib import Path

import click

from expyre import runner

__all__ = ["failure_reason", "log_tail", "print_failures"]

_QUEUE_REASONS = {
    "timeout": "killed by the queue: it exceeded its time limit (ask for more max_time)",
    "out_of_memory": "killed by the queue: it exceeded its memory (ask for more memory)",
    "cancelled": "cancelled (by `xpr`, a driver, or the queue's administrator)",
    "node_fail": "its node failed (resubmit it: `xpr reset_status -s died -i ID`)",
    "vanished": "left the queue without writing a result (see its stderr: `xpr logs --stderr`)",
}


def _record(stage_dir: Path) -> dict | None:
    from expyre.stagedir import read_record

    return read_record(stage_dir)


def failure_reason(row: dict) -> str:
    """One line saying why a failed or died job did not succeed ("" for other states).

    Parameters
    ----------
    row : dict
        A jobs-database row.
    """
    if row["status"] not in ("failed", "died", "processed", "stale"):
        return ""
    category = row.get("failure_category")
    prefix = f"[{category}] " if category else ""
    record = _record(Path(row["stage_dir"]))
    if record is not None and not record.get("ok"):
        text = (record.get("exception_repr") or "an exception").splitlines()[0]
        stage = record.get("stage")
        if stage and stage != "call":
            text += f" (while: {stage})"
        return prefix + text
    if row["status"] in ("processed", "stale"):
        return ""
    qs = row.get("queue_state") or "vanished"
    return prefix + _QUEUE_REASONS.get(qs, f"left the queue as {qs!r} without a result")


def log_tail(row: dict, lines: int = 20, name: str = runner.STDERR_FILE) -> str:
    """Last ``lines`` lines of a job's local stderr (or another log file), "" if none."""
    path = Path(row["stage_dir"]) / name
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))  # the tail of a huge log without reading it all
            text = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def print_failures(project, rows: list[dict]) -> None:
    """The failures view of ``xpr ls``: one row per failed/died job with its reason."""
    from expyre.cli._format import print_table

    rows = [r for r in rows if r["status"] in ("failed", "died")]
    if not rows:
        click.echo("no failed or died jobs match")
        return
    print_table(
        ["ID", "NAME", "STATUS", "REASON"],
        [[r["id"], r["name"], r["status"], failure_reason(r)] for r in rows],
        shrink=[3, 0, 1],
    )
    click.echo(f"{len(rows)} failure(s); details: `xpr show ID`, logs: `xpr logs ID --stderr`")
