"""Small text helpers for ``xpr`` output: durations, times, and tables that fit the terminal."""

from __future__ import annotations

import os
import shutil
import time

__all__ = [
    "duration",
    "echo_wrapped",
    "fit_widths",
    "plain_table",
    "print_table",
    "rich_table",
    "terminal_width",
    "when",
]

# Above this many rows a table is laid out by plain string formatting: rich's layout costs
# about a millisecond per row, which makes long listings slow for no visible gain.
RICH_MAX_ROWS = 400


def duration(seconds: float | None) -> str:
    """``"-"``, ``"0.8s"``, ``"42s"``, ``"3m05s"``, ``"2h07m"``, ``"3d04h"`` (seconds in)."""
    if seconds is None:
        return "-"
    if seconds < 10:  # short waits and runs matter when judging queue overhead
        return f"{max(0.0, seconds):.1f}s"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def when(t: float | None) -> str:
    """Local date and time of a unix time (s), or ``"-"``."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t)) if t else "-"


def terminal_width() -> int:
    """Width to lay tables out in: ``$COLUMNS``, else the terminal's, else 100."""
    try:
        return max(40, int(os.environ["COLUMNS"]))
    except (KeyError, ValueError):
        return shutil.get_terminal_size((100, 24)).columns


def fit_widths(
    header: list[str], rows: list[list[str]], width: int, shrink: list[int], sep: int = 2
) -> list[int]:
    """Column widths (characters) that fit ``width``, shortening ``shrink`` columns in order.

    Parameters
    ----------
    header : list of str
    rows : list of list of str
    width : int
        Characters per line available, separators included.
    shrink : list of int
        Indices of columns that may be shortened, most shrinkable first; a column keeps
        at least its header's width (and 6 characters).
    sep : int
        Characters between two columns.
    """
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(header)
    widths = [
        max(len(h), max(map(len, col), default=0)) for h, col in zip(header, columns, strict=True)
    ]
    excess = sum(widths) + sep * (len(widths) - 1) - width
    for i in (i for i in shrink if i < len(widths)):
        if excess <= 0:
            break
        cut = min(excess, widths[i] - max(6, len(header[i])))
        if cut > 0:
            widths[i] -= cut
            excess -= cut
    return widths


def _fit(text: str, w: int) -> str:
    return text if len(text) <= w else text[: w - 1] + "…"


def plain_table(header: list[str], rows: list[list[str]], width: int, shrink: list[int]) -> str:
    """Left-aligned columns, two spaces apart, cut to ``width`` characters per line."""
    widths = fit_widths(header, rows, width, shrink)
    natural = fit_widths(header, rows, 10**9, [])
    cut = [i for i, (w, n) in enumerate(zip(widths, natural, strict=True)) if w < n]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = []
    for row in [header, *rows]:
        if cut:
            row = list(row)
            for i in cut:
                row[i] = _fit(row[i], widths[i])
        lines.append(fmt.format(*row)[:width].rstrip())
    return "\n".join(lines)


_STATUS_STYLES = {
    "failed": "red",
    "died": "red",
    "succeeded": "green",
    "processed": "green",
    "started": "cyan",
    "submitted": "yellow",
    "stale": "magenta",
}


def rich_table(header: list[str], rows: list[list[str]], width: int, shrink: list[int]):
    """A rich Table with the widths of :func:`fit_widths` (cells cut with "…", never wrapped)."""
    from rich import box
    from rich.table import Table

    # rich puts a one-space pad each side of a divider: three characters between columns
    widths = fit_widths(header, rows, width, shrink, sep=3)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, padding=(0, 1))
    for name, w in zip(header, widths, strict=True):
        table.add_column(name, no_wrap=True, overflow="ellipsis", width=w)
    status_col = header.index("STATUS") if "STATUS" in header else None
    for row in rows:
        style = _STATUS_STYLES.get(row[status_col]) if status_col is not None else None
        table.add_row(*row, style=style)
    return table


def echo_wrapped(text: str) -> None:
    """Print a sentence wrapped to the terminal width (continuation lines indented)."""
    import textwrap

    import click

    click.echo(textwrap.fill(text, width=terminal_width(), subsequent_indent="  "))


def visible_columns(widths: list[int], width: int, sep: int) -> int:
    """How many leading columns fit in ``width`` characters (at least one)."""
    used = 0
    for n, w in enumerate(widths):
        used += w + (sep if n else 0)
        if used > width:
            return max(1, n)
    return len(widths)


def print_table(header: list[str], rows: list[list[str]], shrink: list[int]) -> None:
    """Print a table fitting the terminal: rich for short listings, plain text for long ones.

    Columns are shortened in ``shrink`` order; columns that still do not fit are left out
    (rightmost first) and a last line says which, so no line ever wraps.
    """
    import click

    width = terminal_width()
    plain = len(rows) > RICH_MAX_ROWS
    sep = 2 if plain else 3
    n = visible_columns(fit_widths(header, rows, width, shrink, sep=sep), width, sep)
    dropped = header[n:]
    if dropped:
        header, rows = header[:n], [r[:n] for r in rows]
    if plain:
        click.echo(plain_table(header, rows, width, shrink))
    else:
        from rich.console import Console

        console = Console(width=width, highlight=False, soft_wrap=False)
        console.print(rich_table(header, rows, width, shrink))
    if dropped:
        echo_wrapped(f"(left out to fit {width} columns: {', '.join(dropped)}; widen the terminal)")
