"""Choosing which autoparallelized calls go to the queue: ``WFL_EXPYRE_INFO``.

The variable holds JSON (or YAML) text, or the path of a file holding it: a dict whose keys
select calls and whose values are RemoteInfo keyword arguments. A key is a comma-separated
list of items, each a ``remote_label`` or ``"end/of/path/file.py::function"``; the path items
match the innermost frames of the call stack (wfl's own plumbing excluded), the last item
being the function that called ``autoparallelize``. A call that no key matches runs locally
and says so on stderr at once, naming its own keys and the nearest key of the variable;
with ``WFL_EXPYRE_INFO_STRICT=1`` it is an error instead. Text that starts with ``{`` or
``[`` is JSON: a syntax error in it is reported with its line and column, never reread as
YAML.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import threading
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from expyre.envvars import env_flag
from wfl.autoparallelize.autoparainfo import AutoparaInfo
from wfl.autoparallelize.remoteinfo import RemoteInfo

ENV_VAR = "WFL_EXPYRE_INFO"

# Frames from these directories are wfl's plumbing between the user's call and the queue.
_PLUMBING_DIRS = (str(Path(__file__).resolve().parent) + os.sep,)


@dataclass(frozen=True)
class _KeyItem:
    """One comma-separated item of a WFL_EXPYRE_INFO key."""

    text: str
    path: str | None  # "end/of/path.py" for a path item, None for a remote_label
    function: str | None

    @classmethod
    def parse(cls, text: str, key: str, source: str) -> _KeyItem:
        text = text.strip()
        if not text:
            raise ValueError(f"{source}: key {key!r} has an empty item; remove the extra comma")
        if "::" not in text:
            return cls(text, None, None)
        path, function = text.rsplit("::", 1)
        if not path or not function:
            raise ValueError(
                f"{source}: key item {text!r} must look like 'end/of/path/file.py::function_name'"
            )
        return cls(text, path.replace(os.sep, "/"), function)

    def matches_frame(self, filename: str, function_name: str, qualname: str) -> bool:
        """Path must match at a '/' boundary of the real path; function names exactly."""
        real = filename.replace(os.sep, "/")
        path_ok = real == self.path or real.endswith("/" + self.path.lstrip("/"))
        return path_ok and self.function in (function_name, qualname)


@dataclass(frozen=True)
class _Selector:
    key: str
    items: tuple[_KeyItem, ...]
    remote_info_kwargs: Mapping[str, Any]

    def matches(self, frames: list[tuple[str, str, str]], remote_label: str | None) -> bool:
        labels = [i for i in self.items if i.path is None]
        paths = [i for i in self.items if i.path is not None]
        if any(label.text != remote_label for label in labels):
            return False
        if len(paths) > len(frames):
            return False
        innermost = frames[len(frames) - len(paths) :] if paths else []
        return all(item.matches_frame(*frame) for item, frame in zip(paths, innermost, strict=True))


class ExpyreInfoSelection:
    """The parsed value of ``WFL_EXPYRE_INFO`` and which of its keys were ever used."""

    def __init__(self, value: str, source: str = ENV_VAR) -> None:
        self.source = source
        data = parse_info_text(value, source)
        if not isinstance(data, dict):
            raise ValueError(f"{source} must hold a dict (JSON object), got {type(data).__name__}")
        self.applies_to_all: Mapping[str, Any] | None = data if "sys_name" in data else None
        self.selectors = [] if self.applies_to_all is not None else self._selectors(data)
        self.used_keys: set[str] = set()

    def _selectors(self, data: Mapping[str, Any]) -> list[_Selector]:
        selectors = []
        for key, kwargs in data.items():
            if not isinstance(kwargs, Mapping):
                raise ValueError(
                    f"{self.source}: the value of key {key!r} must be a dict of RemoteInfo "
                    f"arguments, got {kwargs!r}"
                )
            RemoteInfo.from_value(kwargs, f"{self.source} key {key!r}")  # validate early
            items = tuple(_KeyItem.parse(t, key, self.source) for t in str(key).split(","))
            selectors.append(_Selector(str(key), items, kwargs))
        return selectors

    def select(
        self, remote_label: str | None, frames: list[tuple[str, str, str]]
    ) -> RemoteInfo | None:
        """The RemoteInfo of the first key matching this call, or None (run locally)."""
        if self.applies_to_all is not None:
            return RemoteInfo.from_value(self.applies_to_all, self.source)
        for selector in self.selectors:
            if selector.matches(frames, remote_label):
                self.used_keys.add(selector.key)
                return RemoteInfo.from_value(
                    selector.remote_info_kwargs, f"{self.source} key {selector.key!r}"
                )
        return None

    def unused_keys(self) -> list[str]:
        return [s.key for s in self.selectors if s.key not in self.used_keys]


def parse_info_text(value: str, source: str) -> Any:
    """JSON or YAML text, or the path of a file holding it; one clear error otherwise."""
    text = value
    from_file = False
    if value.strip() and "\n" not in value and not value.lstrip().startswith(("{", "[")):
        path = Path(value.strip()).expanduser()
        if path.is_file():
            try:
                text = path.read_text()
            except OSError as exc:
                raise ValueError(f"{source}: cannot read file {str(path)!r}: {exc}") from None
            from_file = True
    try:
        return json.loads(text)
    except json.JSONDecodeError as json_error:
        where = f"file {value!r}" if from_file else f"value {value[:200]!r}"
        if text.lstrip().startswith(("{", "[")):
            # meant as JSON: reading it as YAML instead would hide the typo or, worse, accept
            # a different dict than the one written
            line = text.splitlines()[json_error.lineno - 1] if text.strip() else ""
            raise ValueError(
                f"{source}: {where} is not valid JSON: {json_error.msg} at line "
                f"{json_error.lineno}, column {json_error.colno}:\n    {line}\n    "
                f"{' ' * (json_error.colno - 1)}^\nfix the JSON there (YAML is accepted only "
                "for text that does not start with '{' or '[')"
            ) from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError:
            data = None
        if isinstance(data, dict):
            return data
        raise ValueError(
            f"{source}: {where} is neither valid JSON/YAML text ({json_error}) "
            "nor the path of an existing file; give a JSON dict such as "
            '{"file.py::function": {"sys_name": ..., "job_name": ..., "resources": {...}}} '
            "or the path of a file holding one"
        ) from None


# ----------------------------------------------------------------------------- process state

_lock = threading.Lock()
_cache: dict[tuple[str, str], ExpyreInfoSelection] = {}


def selection_from_env(var: str = ENV_VAR) -> ExpyreInfoSelection | None:
    """Parsed content of an env var (cached per value), or None when unset/empty."""
    value = os.environ.get(var, "")
    if not value.strip():
        return None
    with _lock:
        selection = _cache.get((var, value))
        if selection is None:
            selection = ExpyreInfoSelection(value, var)
            _cache[(var, value)] = selection
    return selection


def _warn_unused_keys() -> None:
    for selection in _cache.values():
        for key in selection.unused_keys():
            warnings.warn(
                f"{selection.source} key {key!r} matched no autoparallelized call in this run, "
                "so nothing it describes went to the queue; check the file/function names "
                "(items are 'end/of/path.py::function' or a remote_label)",
                stacklevel=1,
            )


atexit.register(_warn_unused_keys)


def user_frames(start: FrameType | None = None) -> list[tuple[str, str, str]]:
    """(filename, function name, qualname) of the calling frames, outermost first,
    leaving out frames from wfl's autoparallelize plumbing."""
    frame = start if start is not None else sys._getframe(1)
    frames = []
    while frame is not None:
        code = frame.f_code
        filename = os.path.abspath(code.co_filename)
        if not filename.startswith(_PLUMBING_DIRS):
            qualname = getattr(code, "co_qualname", code.co_name)
            frames.append((filename, code.co_name, qualname))
        frame = frame.f_back
    frames.reverse()
    return frames


def select_remote_info(autopara_info: AutoparaInfo) -> RemoteInfo | None:
    """Decide whether this autoparallelized call runs as queued jobs, and with what.

    Parameters
    ----------
    autopara_info : AutoparaInfo
        The call's settings: a ``remote_info`` given in code wins; otherwise
        ``WFL_EXPYRE_INFO`` is matched against ``remote_label`` and the call stack.

    Returns
    -------
    RemoteInfo or None
        None means "run in the local Python process pool".
    """
    return choose_remote_info(
        getattr(autopara_info, "remote_info", None),
        getattr(autopara_info, "remote_label", None),
        source="autopara_info remote_info",
        report_unmatched=True,
    )


def choose_remote_info(
    explicit: RemoteInfo | Mapping[str, Any] | None,
    label: str | None,
    env_var: str | None = None,
    source: str = "remote_info",
    report_unmatched: bool = False,
) -> RemoteInfo | None:
    """The one selection rule: given in code, else ``env_var``, else ``WFL_EXPYRE_INFO``.

    Parameters
    ----------
    explicit : RemoteInfo or dict, optional
        Given in code; wins over every variable.
    label : str, optional
        Label matched against ``WFL_EXPYRE_INFO`` keys (with the call stack).
    env_var : str, optional
        A variable of the caller's own (e.g. a fit's ``WFL_GAP_SIMPLE_FIT_REMOTEINFO``)
        holding one RemoteInfo as JSON/YAML text or a file path; checked before
        ``WFL_EXPYRE_INFO``.
    source : str
        How ``explicit`` is named in error messages.
    report_unmatched : bool
        Say (once per call site) that ``WFL_EXPYRE_INFO`` is set but matched nothing.

    Returns
    -------
    RemoteInfo or None
        None means "run here".
    """
    if explicit is not None:
        return _with_pytest_extras(RemoteInfo.from_value(explicit, source))
    value = os.environ.get(env_var, "").strip() if env_var else ""
    if value:
        return _with_pytest_extras(RemoteInfo.from_value(parse_info_text(value, env_var), env_var))
    selection = selection_from_env()
    if selection is None:
        return None
    frames = user_frames()
    chosen = selection.select(label, frames)
    if chosen is None:
        if report_unmatched:
            _report_unmatched(selection, frames, label)
        return None
    return _with_pytest_extras(chosen)


STRICT_ENV_VAR = "WFL_EXPYRE_INFO_STRICT"
_reported: set[str] = set()


def call_keys(frames: list[tuple[str, str, str]], remote_label: str | None) -> list[str]:
    """Keys that would select this call: innermost frame, caller + innermost, the label."""
    keys = []
    if frames:
        inner = _frame_key(frames[-1])
        keys.append(inner)
        if len(frames) >= 2:
            keys.append(f"{_frame_key(frames[-2])},{inner}")
    if remote_label:
        keys.append(remote_label)
    return keys


def _frame_key(frame: tuple[str, str, str]) -> str:
    filename, function, _ = frame
    parts = filename.replace(os.sep, "/").split("/")
    return f"{'/'.join(parts[-2:])}::{function}"


def _report_unmatched(
    selection: ExpyreInfoSelection, frames: list[tuple[str, str, str]], label: str | None
) -> None:
    """Say at once that a call runs here although WFL_EXPYRE_INFO is set (strict: refuse).

    A mistyped key would otherwise run a day-long step on the login node, with only a
    warning at process exit to show for it.
    """
    import difflib

    keys = call_keys(frames, label)
    unused = selection.unused_keys() or [s.key for s in selection.selectors]
    nearest = None
    best = 0.0
    for key in unused:
        for own in keys:
            ratio = difflib.SequenceMatcher(None, key, own).ratio()
            if ratio > best:
                nearest, best = key, ratio
    hint = f"; nearest key in {selection.source}: {nearest!r}" if nearest else ""
    own = ", ".join(repr(k) for k in keys) or "(no frames)"
    message = (
        f"{selection.source} is set but no key matches this call, so it runs HERE, not in a "
        f"queue: the call's keys are {own}{hint}"
    )
    if env_flag(STRICT_ENV_VAR):  # a typo in the value is an error, not "not strict"
        raise ValueError(
            f"{message}. {STRICT_ENV_VAR} is set, so this is an error: fix the key (or add "
            f"one of the call's keys to {selection.source}), or unset {STRICT_ENV_VAR} to let "
            "unmatched calls run locally"
        )
    if message not in _reported:  # once per call site and process, not once per item
        _reported.add(message)
        print(f"wfl: {message} (set {STRICT_ENV_VAR}=1 to make this an error)", file=sys.stderr)


def _with_pytest_extras(remote_info: RemoteInfo) -> RemoteInfo:
    """Merge ``WFL_PYTEST_EXPYRE_INFO`` (test runs only) into a RemoteInfo."""
    extra = os.environ.get("WFL_PYTEST_EXPYRE_INFO", "").strip()
    if not extra:
        return remote_info
    data = parse_info_text(extra, "WFL_PYTEST_EXPYRE_INFO")
    return remote_info.updated(data, "WFL_PYTEST_EXPYRE_INFO")
