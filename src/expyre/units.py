"""Parsing of wall times and memory sizes as users write them in config.json and Resources.

Times come back in seconds, memory in kB (1 kB = 1024 bytes, the unit batch systems use).
"""

from __future__ import annotations

import re

__all__ = ["format_time", "mem_to_kB", "parse_memory", "parse_time", "time_to_HMS", "time_to_sec"]

_TIME_SUFFIX_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MEM_SUFFIX_KB = {"k": 1, "m": 1024, "g": 1024**2, "t": 1024**3}


def parse_time(value: int | float | str, what: str = "time") -> int:
    """Convert a wall time to whole seconds.

    Parameters
    ----------
    value : int, float or str
        Seconds as a number, or a string: ``"90"`` (s), ``"30m"``, ``"24h"``, ``"2d"``,
        ``"1-00:00:00"`` (days-H:M:S, Slurm style), ``"H:M:S"`` or ``"M:S"``.
    what : str
        Name of the input, used in the error message.

    Returns
    -------
    int
        Time in seconds (fractions rounded up).

    Raises
    ------
    ValueError
        If the value cannot be read as a time or is negative.
    """
    if isinstance(value, bool):
        raise ValueError(_time_error(what, value))
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        seconds = _parse_time_str(value.strip(), what)
    else:
        raise ValueError(_time_error(what, value))
    if seconds < 0:
        raise ValueError(f"{what} {value!r} is negative; give a positive time such as '30m'")
    return int(-(-seconds // 1))


def _parse_time_str(text: str, what: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([smhd]?)", text, flags=re.IGNORECASE)
    if m:
        return float(m.group(1)) * _TIME_SUFFIX_S[(m.group(2) or "s").lower()]
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if m and (":" in text or m.group(1)):
        days = int(m.group(1) or 0)
        parts = [int(p) for p in m.groups()[1:] if p is not None]
        if m.group(1) and len(parts) == 1:  # "1-12" is days-hours in Slurm
            parts = [parts[0], 0, 0]
        while len(parts) < 3:  # "M:S" -> "0:M:S"
            parts.insert(0, 0)
        hours, minutes, secs = parts
        if minutes >= 60 or secs >= 60:
            raise ValueError(_time_error(what, text))
        return days * 86400 + hours * 3600 + minutes * 60 + secs
    raise ValueError(_time_error(what, text))


def _time_error(what: str, value: object) -> str:
    return (
        f"{what} {value!r} is not a time; use seconds (3600) or a string like "
        "'30m', '24h', '2d', '1-00:00:00' or 'H:M:S'"
    )


def format_time(seconds: int) -> str:
    """Format seconds as ``[D-]HH:MM:SS``, Slurm's form of a time limit.

    SGE (``h_rt``) and PBS (``walltime``) do not accept the ``D-`` prefix; use
    :meth:`expyre.schedulers.base.Scheduler.format_time_limit` for header lines.

    Parameters
    ----------
    seconds : int
        Time in seconds.
    """
    seconds = int(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    hms = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{hms}" if days else hms


def parse_memory(value: int | str, what: str = "memory") -> int:
    """Convert a memory size to kB (1024 bytes).

    Parameters
    ----------
    value : int or str
        An integer is kB already; a string is a number with a unit: ``"512MB"``, ``"50GB"``,
        ``"2T"``, ``"4000kB"`` (case-insensitive, the ``B`` and an ``i`` are optional).
    what : str
        Name of the input, used in the error message.

    Returns
    -------
    int
        Size in kB (rounded up).

    Raises
    ------
    ValueError
        If the value cannot be read as a memory size or is negative.
    """
    if isinstance(value, bool):
        raise ValueError(_mem_error(what, value))
    if isinstance(value, int):
        kb = float(value)
    elif isinstance(value, str):
        m = re.fullmatch(r"(\d+(?:\.\d*)?)\s*([kmgt])i?b?", value.strip(), flags=re.IGNORECASE)
        if not m:
            raise ValueError(_mem_error(what, value))
        kb = float(m.group(1)) * _MEM_SUFFIX_KB[m.group(2).lower()]
    else:
        raise ValueError(_mem_error(what, value))
    if kb < 0:
        raise ValueError(f"{what} {value!r} is negative; give a size such as '4GB'")
    return int(-(-kb // 1))


def _mem_error(what: str, value: object) -> str:
    return (
        f"{what} {value!r} is not a memory size; use kB as an integer (4096) or a string "
        "like '512MB', '50GB' or '1TB'"
    )


# ---------------------------------------------------------------- names of expyre-wfl 0.1.6
def time_to_sec(t: int | float | str | None) -> int | None:
    """A wall time in seconds, as :func:`parse_time`; None stays None."""
    return None if t is None else parse_time(t)


def mem_to_kB(mem: int | str | None) -> int | None:  # noqa: N802 - name of expyre-wfl 0.1.6
    """A memory size in kB, as :func:`parse_memory`; None stays None."""
    return None if mem is None else parse_memory(mem)


def time_to_HMS(t: int) -> str:  # noqa: N802 - name of expyre-wfl 0.1.6
    """Seconds as ``H:MM:SS`` (hours not wrapped into days)."""
    t = int(t)
    return f"{t // 3600}:{t // 60 % 60:02d}:{t % 60:02d}"
