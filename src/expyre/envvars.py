"""Reading expyre's environment variables, with one clear error for a value that makes no sense.

A mistyped variable must not surface as ``ValueError: could not convert string to float``
from deep inside a module import, nor be silently taken for something else (``0`` switching
a trace *on*). Each reader names the variable, the value it found and what to set instead.
"""

from __future__ import annotations

import math
import os

__all__ = [
    "EnvVarError",
    "check_environment",
    "env_flag",
    "env_seconds",
    "lock_patience_s",
    "remote_shell_argv",
]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


class EnvVarError(ValueError):
    """An environment variable holds a value that cannot be used."""


def env_seconds(name: str, default: float, *, allow_zero: bool = True) -> float:
    """A duration in seconds from the environment variable ``name``.

    Parameters
    ----------
    name : str
        The variable.
    default : float
        Seconds used when the variable is unset or empty.
    allow_zero : bool
        Whether 0 is meaningful (e.g. "no grace period"); otherwise it is refused.

    Returns
    -------
    float
        Seconds (finite, not negative).

    Raises
    ------
    EnvVarError
        If the value is not a finite number of seconds in range.
    """
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    low = "0 or more" if allow_zero else "more than 0"
    if not math.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        raise EnvVarError(
            f"environment variable {name}={text!r} is not a number of seconds ({low}); "
            f"set it like {name}={default:g}, or unset it for the default ({default:g} s)"
        )
    return value


def env_flag(name: str) -> bool:
    """Whether the on/off environment variable ``name`` is on.

    ``1``/``true``/``yes``/``on`` mean on; unset, empty, ``0``/``false``/``no``/``off`` mean
    off (any case).

    Raises
    ------
    EnvVarError
        For any other value: a typo must not silently pick a side.
    """
    text = os.environ.get(name, "")
    word = text.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise EnvVarError(
        f"environment variable {name}={text!r} is neither on nor off; set {name}=1 to turn "
        f"it on, {name}=0 (or unset it) to turn it off"
    )


def check_environment() -> None:
    """Read every expyre variable once, so a bad value is reported before any work starts.

    Called when a job is created and when ``xpr`` starts: a typo in, say,
    ``EXPYRE_DIED_GRACE`` must not wait until a job has run for hours to be found.

    Raises
    ------
    EnvVarError
        For the first variable with an unusable value.
    """
    from expyre.transport import retry_policy  # imports nothing heavy

    lock_patience_s()
    env_seconds("EXPYRE_DIED_GRACE", 60.0)
    env_flag("EXPYRE_TIMING_VERBOSE")
    retry_policy()
    remote_shell_argv(None)


def lock_patience_s() -> float:
    """``EXPYRE_DB_LOCK_PATIENCE``: seconds to wait for the jobs database's write lock."""
    return env_seconds("EXPYRE_DB_LOCK_PATIENCE", 600.0, allow_zero=False)


def remote_shell_argv(configured: str | None) -> list[str]:
    """The remote shell command as argv: ``configured`` (config.json), else ``EXPYRE_RSH``, else ssh.

    Raises
    ------
    EnvVarError
        If ``EXPYRE_RSH`` is not valid shell words (e.g. an unclosed quote).
    """
    import shlex

    text = configured or os.environ.get("EXPYRE_RSH") or "ssh"
    try:
        argv = shlex.split(text)
    except ValueError as exc:
        raise EnvVarError(
            f"the remote shell command {text!r} (config.json's remsh_cmd, else environment "
            f"variable EXPYRE_RSH) is not valid shell words ({exc}); write it like "
            "'ssh -p 2222'"
        ) from None
    if not argv:
        raise EnvVarError(
            f"the remote shell command {text!r} (config.json's remsh_cmd, else environment "
            "variable EXPYRE_RSH) names no command; use e.g. 'ssh'"
        )
    return argv
