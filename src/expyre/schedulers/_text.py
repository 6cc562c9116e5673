"""Text helpers shared by the batch backends (Slurm, SGE, PBS): names, directive values, ids.

Header lines (``#SBATCH``, ``#$``, ``#PBS``) are parsed by the batch system, not by a shell,
and each system has its own small quoting rules. Rather than trusting three different
parsers with arbitrary text we keep what reaches them simple: job names are reduced to a
safe alphabet, and paths are either plain or double-quoted, with the few characters that no
backend can carry rejected by one clear error.
"""

from __future__ import annotations

import re

__all__ = ["check_ids", "directive_value", "hours_minutes_seconds", "safe_job_name"]

_UNSAFE_NAME_CHAR = re.compile(r"[^A-Za-z0-9_.+-]")
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_./+,=@%:-]+")
# never representable in a header line: quotes and backslashes (quoting rules differ between
# backends), $ and ` (SGE expands $JOB_ID-style names in paths), control characters
_FORBIDDEN_IN_VALUE = re.compile(r"[\"'\\$`\x00-\x1f\x7f]")


def safe_job_name(name: str, max_len: int = 200) -> str:
    """Return a job name every backend accepts and no parser can misread.

    Characters outside ``[A-Za-z0-9_.+-]`` become ``_`` and a name that does not start with
    a letter gets a ``j`` in front (SGE rejects leading digits, PBS wants a letter first).
    The mapping preserves prefixes: ``safe_job_name(p)`` is a prefix of ``safe_job_name(n)``
    whenever ``p`` is a non-empty prefix of ``n`` (shorter than ``max_len``), so finding jobs
    by name prefix keeps working.

    Parameters
    ----------
    name : str
        Requested job name.
    max_len : int
        Longest name returned, in characters (PBS allows 236, SGE and Slurm more).
    """
    cleaned = _UNSAFE_NAME_CHAR.sub("_", name)
    if not cleaned[:1].isalpha() or not cleaned[:1].isascii():
        cleaned = "j" + cleaned
    return cleaned[:max_len]


def directive_value(value: str, what: str, directive: str) -> str:
    """Write ``value`` so a scheduler header line reads it back unchanged.

    Plain values are written as they are; values with spaces or other punctuation are
    double-quoted (``#SBATCH``, ``#$`` and ``#PBS`` parsers all strip one pair of double
    quotes).

    Parameters
    ----------
    value : str
        The value (a path, a queue name).
    what : str
        What the value is, for the error message (e.g. ``"stdout path"``).
    directive : str
        The header prefix, for the error message (e.g. ``"#SBATCH"``).

    Raises
    ------
    ValueError
        If ``value`` is empty or contains a quote, backslash, ``$``, backtick or control
        character, which no header line can carry safely.
    """
    if not value:
        raise ValueError(f"{what} is empty; it cannot be written in a {directive} line")
    if _PLAIN_VALUE.fullmatch(value):
        return value
    bad = _FORBIDDEN_IN_VALUE.search(value)
    if bad:
        raise ValueError(
            f"{what} {value!r} contains {bad.group()!r}, which cannot be written safely in a "
            f"{directive} header line; use a directory (rundir / project path) without quotes, "
            "backslashes, '$', '`' or control characters"
        )
    return f'"{value}"'


_ID = re.compile(r"[A-Za-z0-9_.\[\]@-]+")


def check_ids(remote_ids: list[str], scheduler: str) -> list[str]:
    """Return ``remote_ids`` as strings after checking each looks like a scheduler job id.

    Ids go on command lines (and into ``sh -c`` scripts for accounting); refusing anything
    but ``[A-Za-z0-9_.[]@-]`` means a corrupted database can never inject shell text.

    Raises
    ------
    ValueError
        Naming the first malformed id.
    """
    out = []
    for rid in remote_ids:
        rid = str(rid)
        if not _ID.fullmatch(rid):
            raise ValueError(
                f"{scheduler} job id {rid!r} is malformed (expected digits, optionally with a "
                "server suffix); check the jobs database entry for this job"
            )
        out.append(rid)
    return out


def hours_minutes_seconds(seconds: int) -> str:
    """Format a time limit as ``H:MM:SS`` with unbounded hours (SGE ``h_rt``, PBS ``walltime``).

    Unlike Slurm, neither accepts a ``D-`` day prefix, so 2 days is ``48:00:00``.

    Parameters
    ----------
    seconds : int
        Time in seconds (at least 1 is written, as 0 may mean "no limit").
    """
    seconds = max(1, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}"
