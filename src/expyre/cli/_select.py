"""Choosing jobs: the ``-i/-n/-s/-S`` filters shared by every ``xpr`` command.

Ids, names and systems are comma-separated lists of regular expressions matched against the
whole value; statuses are comma-separated state names or group names (``ongoing``...), checked
against the known ones so that a typo is an error instead of an empty selection.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

import click

from expyre.dbpaths import PATH_COLUMNS, to_absolute
from expyre.jobsdb import STATES

__all__ = [
    "STATUS_GROUPS",
    "Selection",
    "filter_options",
    "parse_statuses",
    "read_rows",
]

#: named groups of states; the first two have the meaning the first ``xpr`` gave them
STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    "ongoing": ("created", "submitted", "started"),
    "can_produce_results": ("created", "submitted", "started", "succeeded", "died"),
    "live": ("submitted", "started"),
    "finished": ("succeeded", "failed", "died", "processed"),
    "unsuccessful": ("failed", "died"),
}


def _split(values: Iterable[str] | str | None) -> list[str]:
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def parse_statuses(values: Iterable[str] | str | None) -> frozenset[str] | None:
    """States named by ``-s`` values; None means "any state".

    Parameters
    ----------
    values : str or iterable of str
        Comma-separated state names, group names, or ``*`` (all).

    Raises
    ------
    click.BadParameter
        For a name that is neither a state nor a group; the message lists both.
    """
    items = _split(values)
    if not items or "*" in items:
        return None
    out: set[str] = set()
    for item in items:
        if item in STATES:
            out.add(item)
        elif item in STATUS_GROUPS:
            out.update(STATUS_GROUPS[item])
        else:
            groups = ", ".join(f"{g} ({'/'.join(s)})" for g, s in STATUS_GROUPS.items())
            raise click.BadParameter(
                f"unknown status {item!r}. Valid states: {', '.join(STATES)}. "
                f"Groups: {groups}. Or '*' for all.",
                param_hint="'-s' / '--status'",
            )
    return frozenset(out)


def _regexes(values, option: str) -> list[re.Pattern] | None:
    items = _split(values)
    if not items:
        return None
    try:
        return [re.compile(p) for p in items]
    except re.error as exc:
        raise click.BadParameter(f"bad regular expression: {exc}", param_hint=option) from exc


class Selection:
    """The filters of one command line, applied to jobs-database rows.

    Parameters
    ----------
    ids, names, systems : iterable of str
        Comma-separated regular expressions (whole-value match).
    statuses : iterable of str
        Comma-separated states or groups (see :data:`STATUS_GROUPS`), ``*`` for all.
    """

    def __init__(self, ids=(), names=(), statuses=(), systems=()) -> None:
        self.statuses = parse_statuses(statuses)
        self._status_given = bool(_split(statuses))  # "*" is a criterion: "all, on purpose"
        self._tests = [
            (column, regexes)
            for column, regexes in (
                ("id", _regexes(ids, "'-i' / '--id'")),
                ("name", _regexes(names, "'-n' / '--name'")),
                ("system", _regexes(systems, "'-S' / '--system'")),
            )
            if regexes
        ]

    @property
    def empty(self) -> bool:
        """True when no filter at all was given."""
        return not self._status_given and not self._tests

    def matches(self, row: dict) -> bool:
        if self.statuses is not None and row["status"] not in self.statuses:
            return False
        return all(
            any(r.fullmatch(str(row[c] or "")) for r in regexes) for c, regexes in self._tests
        )

    def rows(self, db_path: Path, columns: Iterable[str] | None = None) -> list[dict]:
        """Matching rows, oldest first (status filtered in SQL: cheap on big projects).

        Parameters
        ----------
        db_path : Path
        columns : iterable of str, optional
            Only these columns (None: all); fewer columns read faster on big projects.
        """
        keep = self.matches if self._tests else None
        return read_rows(db_path, self.statuses, keep=keep, columns=columns)


def read_rows(
    db_path: Path,
    statuses: Iterable[str] | None = None,
    keep: Callable[[dict], bool] | None = None,
    columns: Iterable[str] | None = None,
) -> list[dict]:
    """Rows of a jobs database read without taking any lock (``info`` left as JSON text).

    Parameters
    ----------
    db_path : Path
        The ``jobs.db`` file (must exist).
    statuses : iterable of str, optional
        Only these states (None: all).
    keep : callable, optional
        Further filter on each row.
    columns : iterable of str, optional
        Only these columns; those the database does not have (an older layout) are None.
    """
    # read-only: listing never creates, migrates or locks a database another process writes
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=30.0)
    try:
        rows = _read(conn, statuses, keep, columns)
    except sqlite3.DatabaseError as exc:
        raise click.ClickException(
            f"cannot read the jobs database {db_path} ({exc}); if it is corrupt, stop every "
            f"driver and xpr of this project and run `python -m expyre.dbrepair {db_path}`"
        ) from exc
    finally:
        conn.close()
    # paths inside the project are stored relative to its root, so that it can be moved
    root = db_path.resolve().parent
    for row in rows:
        for column in PATH_COLUMNS:
            if row.get(column):
                row[column] = to_absolute(row[column], root)
    return rows


def _read(conn: sqlite3.Connection, statuses, keep, columns) -> list[dict]:
    where, params = "", []
    if statuses is not None:
        params = sorted(statuses)
        where = f"WHERE status IN ({','.join('?' * len(params))})"
    wanted = "*"
    missing: list[str] = []
    if columns is not None:
        have = {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
        missing = [c for c in columns if c not in have]
        wanted = ", ".join(c for c in columns if c in have)
    cur = conn.execute(f"SELECT {wanted} FROM jobs {where} ORDER BY created_at, id", params)
    names = [d[0] for d in cur.description] + missing
    pad = (None,) * len(missing)
    rows = (dict(zip(names, values + pad, strict=True)) for values in cur)
    return [r for r in rows if keep(r)] if keep else list(rows)


def filter_options(status_default: str | None = None, status_help: str | None = None):
    """Decorator adding ``-i/--id -n/--name -s/--status -S/--system`` (repeatable)."""
    groups = ", ".join(STATUS_GROUPS)
    status_help = status_help or (
        f"comma separated list of status values or groups ({groups}) to include, or '*' for all"
    )

    def decorate(f):
        options = [
            ("-S", "--system", "comma separated list of regexps for entire system name", None),
            ("-s", "--status", status_help, status_default),
            ("-n", "--name", "comma separated list of regexps for entire job name", None),
            ("-i", "--id", "comma separated list of regexps for entire job id", None),
        ]
        for short, long, text, default in options:
            kwargs = {"default": (default,)} if default else {}
            f = click.option(
                long,
                short,
                f"{long[2:]}_filters",
                multiple=True,
                metavar="LIST",
                help=text + ("" if not default else f" [default: {default}]"),
                **kwargs,
            )(f)
        return f

    return decorate


def selection_from(kwargs: dict) -> Selection:
    """Pop the four filter options out of a command's keyword arguments."""
    return Selection(
        ids=kwargs.pop("id_filters"),
        names=kwargs.pop("name_filters"),
        statuses=kwargs.pop("status_filters"),
        systems=kwargs.pop("system_filters"),
    )
