"""How an autoparallelized call is split and where it runs: :class:`AutoparaInfo`."""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wfl.autoparallelize.remoteinfo import RemoteInfo


class Default:
    """The class default of a field the caller did not give.

    A field's default is wrapped in this marker (rather than being the plain value) so that
    an AutoparaInfo knows which fields were given explicitly: ``num_inputs_per_python_subprocess=1``
    given by the caller overrides an operation's default of 5, while an unset field takes it.
    Its repr, ``default(1)``, is what ``help(AutoparaInfo)`` and IDEs show.
    """

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"default({self.value!r})"


@dataclasses.dataclass(kw_only=True, eq=True, repr=True)
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
        Called once in each pool worker (and once before a serial run). ``(None, [])``
        (wfl 0.3.5's default) means None.
    iterable_arg : int or str, default 0
        Position (or keyword name) of the operation's argument that receives the items.
    remote_info : RemoteInfo, dict or None
        Run as queued jobs with these settings (validated by the queued path).
    remote_label : str or None
        Label that ``WFL_EXPYRE_INFO`` keys can use to select this call.
    hash_ignore : list of str
        Operation arguments left out of the job key and completion record.

    Only explicitly given fields count as "set" (also fields assigned later, as in
    ``info.skip_failed = False``): when merged with an operation's defaults, unset fields
    take the operation's default, then the class default. Every value is checked when it
    is given and copied, so the caller's objects are never changed by anything done with
    this one.
    """

    num_inputs_per_python_subprocess: int = Default(1)
    num_python_subprocesses: int | None = Default(None)
    skip_failed: bool = Default(True)
    initializer: tuple[Callable, tuple | list] | None = Default(None)
    iterable_arg: int | str = Default(0)
    remote_info: RemoteInfo | dict | None = Default(None)
    remote_label: str | None = Default(None)
    hash_ignore: list[str] = Default([])

    # ------------------------------------------------------------------ attribute access
    def __setattr__(self, name: str, value: Any) -> None:
        # Every assignment, from the generated __init__ or later by the caller, goes through
        # here: a class default is stored unmarked, anything else is checked, copied and
        # remembered as explicitly set.
        _check_name(name, "AutoparaInfo")
        given = self.__dict__.setdefault("_given", set())
        if isinstance(value, Default):
            given.discard(name)
            object.__setattr__(self, name, copy.deepcopy(value.value))
        else:
            given.add(name)
            object.__setattr__(self, name, _validated(name, value))

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not fields; the message lists the fields.
        raise AttributeError(f"AutoparaInfo has no field {name!r}; fields are {list(_FIELDS)}")

    def __getstate__(self) -> dict[str, Any]:
        # Only the given fields are pickled, so an unpickled object merges like the original.
        return self.explicitly_set()

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name in _FIELDS:
            setattr(self, name, state[name] if name in state else _FIELD_DEFAULTS[name])

    def as_dict(self) -> dict[str, Any]:
        """All fields (set or default) as a new dict."""
        return {name: getattr(self, name) for name in _FIELDS}

    def explicitly_set(self) -> dict[str, Any]:
        """Only the fields that were given explicitly, as a new dict."""
        given = self.__dict__.get("_given", set())
        return {name: getattr(self, name) for name in _FIELDS if name in given}

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
        given = self.explicitly_set()
        for name, value in default_kwargs.items():
            if name not in given:
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


# Field -> class default, in declaration order (the order of repr and docs).
_FIELD_DEFAULTS: dict[str, Default] = {f.name: f.default for f in dataclasses.fields(AutoparaInfo)}
_FIELDS = tuple(_FIELD_DEFAULTS)


def _rejecting_unknown_keywords(generated_init: Callable) -> Callable:
    """The dataclass's own ``__init__``, but an unknown keyword is a ValueError naming the
    valid fields (as wfl 0.3.5 raised) rather than Python's bare TypeError. ``wraps`` keeps
    the generated signature visible to ``help()`` and ``inspect.signature``."""

    @functools.wraps(generated_init)
    def __init__(self: AutoparaInfo, **kwargs: Any) -> None:  # noqa: N807
        for name in kwargs:
            _check_name(name, "AutoparaInfo")
        generated_init(self, **kwargs)

    return __init__


AutoparaInfo.__init__ = _rejecting_unknown_keywords(AutoparaInfo.__init__)


def _check_name(name: str, label: str) -> None:
    if name not in _FIELD_DEFAULTS:
        raise ValueError(
            f"{label} has unknown field {name!r}; valid fields are {', '.join(_FIELDS)}"
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
        if isinstance(value, tuple | list) and len(value) == 2 and value[0] is None:
            value = None  # wfl 0.3.5's spelling of "no initializer", its default (None, [])
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
