"""How an autoparallelized call is split and where it runs: :class:`AutoparaInfo`."""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any

# Field -> class default. The order is the order shown in repr and docs.
_DEFAULTS: dict[str, Any] = {
    "num_inputs_per_python_subprocess": 1,
    "num_python_subprocesses": None,
    "skip_failed": True,
    "initializer": None,
    "iterable_arg": 0,
    "remote_info": None,
    "remote_label": None,
    "hash_ignore": [],
}


class AutoparaInfo:
    """Settings of one autoparallelized call.

    Parameters
    ----------
    num_inputs_per_python_subprocess : int, default 1
        Chunk size: how many items one task of the process pool (or one call of the
        operation) handles.
    num_python_subprocesses : int or None, default None
        Size of the process pool. None: env ``WFL_NUM_PYTHON_SUBPROCESSES``; 0 or unset:
        run serially in this process.
    skip_failed : bool, default True
        Drop items whose operation failed (returned None) instead of raising.
    initializer : (callable, args) or None
        Called once in each pool worker (and once before a serial run).
    iterable_arg : int or str, default 0
        Position (or keyword name) of the operation's argument that receives the items.
    remote_info : RemoteInfo, dict or None
        Run as queued jobs with these settings (validated by the queued path).
    remote_label : str or None
        Label that ``WFL_EXPYRE_INFO`` keys can use to select this call.
    hash_ignore : list of str
        Operation arguments left out of the job key and completion record.

    Only explicitly given fields count as "set": when merged with an operation's defaults,
    unset fields take the operation's default, then the class default. Given values are
    copied, so the caller's objects are never changed by anything done with this one.
    """

    __slots__ = ("_set",)

    def __init__(self, **kwargs: Any) -> None:
        object.__setattr__(self, "_set", {})
        for name, value in kwargs.items():
            setattr(self, name, value)

    # ------------------------------------------------------------------ attribute access
    def __getattr__(self, name: str) -> Any:
        if name in _DEFAULTS:
            values = object.__getattribute__(self, "_set")
            return values[name] if name in values else copy.deepcopy(_DEFAULTS[name])
        raise AttributeError(f"AutoparaInfo has no field {name!r}; fields are {list(_DEFAULTS)}")

    def __setattr__(self, name: str, value: Any) -> None:
        _check_name(name, "AutoparaInfo")
        self._set[name] = _validated(name, value)

    def __getstate__(self) -> dict[str, Any]:
        return dict(self._set)

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "_set", dict(state))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AutoparaInfo):
            return NotImplemented
        return self.as_dict() == other.as_dict()

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={getattr(self, k)!r}" for k in _DEFAULTS)
        return f"AutoparaInfo({fields})"

    def as_dict(self) -> dict[str, Any]:
        """All fields (set or default) as a new dict."""
        return {name: getattr(self, name) for name in _DEFAULTS}

    def explicitly_set(self) -> dict[str, Any]:
        """Only the fields that were given explicitly, as a new dict."""
        return dict(self._set)

    # ------------------------------------------------------------------ merging
    def update_defaults(self, default_kwargs: Mapping[str, Any]) -> None:
        """Give every field not set explicitly its value from ``default_kwargs``, in place.

        wfl 0.3.5's way of applying an operation's ``default_autopara_info`` (fields in
        neither keep the class default); :meth:`merged` does the same without changing
        this object.

        Raises
        ------
        ValueError
            Naming a key of ``default_kwargs`` that is not a field, or a bad value.
        """
        for name in default_kwargs:
            _check_name(name, "default_kwargs")
        for name, value in default_kwargs.items():
            if name not in self._set:
                setattr(self, name, value)

    @classmethod
    def merged(
        cls,
        user: AutoparaInfo | Mapping[str, Any] | None,
        defaults: Mapping[str, Any] | None = None,
    ) -> AutoparaInfo:
        """A fresh AutoparaInfo: ``user`` over ``defaults`` over the class defaults.

        Parameters
        ----------
        user : AutoparaInfo, dict or None
            What the caller gave as ``autopara_info``.
        defaults : dict, optional
            The operation's ``default_autopara_info``.

        Raises
        ------
        ValueError
            Naming an unknown field or a field with a bad value.
        """
        merged = cls()
        for source, label in ((defaults, "default_autopara_info"), (user, "autopara_info")):
            if source is None:
                continue
            if isinstance(source, AutoparaInfo):
                items = source.explicitly_set().items()
            elif isinstance(source, Mapping):
                items = source.items()
            else:
                raise ValueError(
                    f"{label} must be an AutoparaInfo or a dict, not {type(source).__name__}"
                )
            for name, value in items:
                _check_name(name, label)
                setattr(merged, name, value)
        return merged


def _check_name(name: str, label: str) -> None:
    if name not in _DEFAULTS:
        raise ValueError(
            f"{label} has unknown field {name!r}; valid fields are {', '.join(_DEFAULTS)}"
        )


def _copy_value(value: Any) -> Any:
    # Callables and RemoteInfo-like objects are copied as far as deepcopy can; functions
    # and classes deepcopy to themselves, which is what we want.
    try:
        return copy.deepcopy(value)
    except Exception:  # noqa: BLE001 - an uncopyable value is kept as given, not mutated
        return value


def _validated(name: str, value: Any) -> Any:
    """Check one field's value; return a private copy of it."""

    def bad(expected: str) -> ValueError:
        return ValueError(f"autopara_info {name}={value!r} is invalid; expected {expected}")

    if name == "num_inputs_per_python_subprocess":
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad("a positive int")
    elif name == "num_python_subprocesses":
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 0
        ):
            raise bad("None or an int >= 0")
    elif name == "skip_failed":
        if not isinstance(value, bool):
            raise bad("True or False")
    elif name == "initializer":
        if value is not None and not _is_initializer(value):
            raise bad("None or a (function, args) pair, e.g. (np.random.seed, [5])")
    elif name == "iterable_arg":
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise bad("an argument position (int) or name (str)")
    elif name == "remote_label":
        if value is not None and not isinstance(value, str):
            raise bad("None or a str")
    elif name == "hash_ignore":
        if isinstance(value, str) or not all(isinstance(v, str) for v in value):
            raise bad("a list of argument names")
        value = list(value)
    return _copy_value(value)


def _is_initializer(value: Any) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 2
        and isinstance(value[0], Callable)
        and isinstance(value[1], tuple | list)
    )
