"""Job keys: recognise "the same call" across interpreters, restarts and pickle round trips.

A job key (SPEC §4.3) has two halves:

* the *call digest* -- the function's identity, its arguments (minus ``hash_ignore``) and
  the names and bytes of its input files, encoded canonically (see :func:`argument_digest`),
  so it never depends on pickle bytes, ``PYTHONHASHSEED`` or dict insertion order;
* the *code fingerprint* -- the called function's code, and the functions and classes it
  reaches in user code (including ``wfl``), with comments and docstrings removed (see
  :func:`code_fingerprint`). Third-party packages count by their installed version only.

Two calls with the same call digest but different code fingerprints are "the same call with
edited code": the job engine refuses to reuse the old job and marks it stale.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib.metadata
import inspect
import math
import os
import struct
import sys
import sysconfig
import textwrap
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["JobKey", "argument_digest", "code_fingerprint", "input_files_digest", "job_key"]

# Top-level packages whose code always counts as "user code", wherever they are installed:
# editing wfl's own operations must invalidate cached jobs just like editing a user's script.
ALWAYS_FINGERPRINTED_PACKAGES = frozenset({"wfl"})


# --------------------------------------------------------------------------- arguments


class _CanonicalEncoder:
    """Feeds a canonical, type-tagged byte stream describing a value into a hash.

    Containers are encoded structurally; unordered containers (dict, set) are sorted by the
    digests of their encoded items so insertion order and hash seeds do not matter.
    Callables met along the way are collected, so their code can be fingerprinted too
    (an op passed as an argument is part of the job's code).
    """

    def __init__(self) -> None:
        self.callables: list[Callable] = []
        self._active: set[int] = set()

    def digest(self, obj: Any) -> bytes:
        h = hashlib.sha256()
        self._encode(obj, h)
        return h.digest()

    def _encode(self, obj: Any, h: Any) -> None:  # noqa: C901 - one branch per kind of value
        def tag(t: str, payload: bytes = b"") -> None:
            h.update(t.encode() + b":" + str(len(payload)).encode() + b":" + payload)

        if obj is None or isinstance(obj, bool):
            tag("const", repr(obj).encode())
        elif isinstance(obj, int):
            tag("int", str(int(obj)).encode())
        elif isinstance(obj, float):
            tag("float", b"nan" if math.isnan(obj) else struct.pack("<d", obj))
        elif isinstance(obj, complex):
            tag("complex", struct.pack("<dd", obj.real, obj.imag))
        elif isinstance(obj, str):
            tag("str", obj.encode("utf-8", "surrogatepass"))
        elif isinstance(obj, bytes | bytearray):
            tag("bytes", bytes(obj))
        elif isinstance(obj, Path):
            tag("path", str(obj).encode())
        elif _is_numpy_array(obj):
            arr = obj
            if arr.dtype.hasobject:
                tag("ndarray-object", repr(arr.shape).encode())
                for item in arr.ravel().tolist():
                    self._encode(item, h)
            else:
                import numpy as np  # only reached when numpy is already loaded

                data = np.ascontiguousarray(arr).tobytes()
                tag("ndarray", f"{arr.dtype.str}|{arr.shape}".encode())
                tag("data", data)
        elif _is_numpy_scalar(obj):
            tag("npscalar", f"{obj.dtype.str}".encode())
            tag("data", obj.tobytes())
        elif isinstance(obj, types.FunctionType | types.BuiltinFunctionType | type):
            self.callables.append(obj)
            tag("callable", _qualified_name(obj).encode())
        elif isinstance(obj, functools.partial):
            tag("partial")
            self._encode(obj.func, h)
            self._encode(obj.args, h)
            self._encode(obj.keywords, h)
        elif isinstance(obj, types.MethodType):
            tag("method", obj.__func__.__qualname__.encode())
            self.callables.append(obj.__func__)
            self._encode(obj.__self__, h)
        elif isinstance(obj, types.ModuleType):
            tag("module", obj.__name__.encode())
        else:
            self._encode_container_or_object(obj, h, tag)

    def _encode_container_or_object(self, obj: Any, h: Any, tag: Callable) -> None:
        if id(obj) in self._active:  # a reference cycle: encode a back-reference marker
            tag("cycle")
            return
        self._active.add(id(obj))
        try:
            if isinstance(obj, list | tuple):
                tag("list" if isinstance(obj, list) else "tuple", str(len(obj)).encode())
                for item in obj:
                    self._encode(item, h)
            elif isinstance(obj, dict):
                tag("dict", str(len(obj)).encode())
                pairs = sorted((self.digest(k), self.digest(v)) for k, v in obj.items())
                for kd, vd in pairs:
                    h.update(kd + vd)
            elif isinstance(obj, set | frozenset):
                tag("set", str(len(obj)).encode())
                for d in sorted(self.digest(item) for item in obj):
                    h.update(d)
            elif _is_atoms_like(obj):
                self._encode_atoms_like(obj, h, tag)
            elif _is_numpy_generator(obj):
                tag("np.Generator")
                self._encode(obj.bit_generator.state, h)
            else:
                self._encode_object(obj, h, tag)
        finally:
            self._active.discard(id(obj))

    def _encode_atoms_like(self, atoms: Any, h: Any, tag: Callable) -> None:
        # By value: what defines a structure, not the attached calculator's caches.
        tag("atoms", _qualified_name(type(atoms)).encode())
        self._encode(dict(atoms.arrays), h)
        self._encode(dict(atoms.info), h)
        self._encode(atoms.get_cell()[:], h)
        self._encode(atoms.get_pbc(), h)
        constraints = [
            c.todict() if hasattr(c, "todict") else c for c in getattr(atoms, "constraints", [])
        ]
        self._encode(constraints, h)
        calc = getattr(atoms, "calc", None)
        self._encode(None if calc is None else _qualified_name(type(calc)), h)

    def _encode_object(self, obj: Any, h: Any, tag: Callable) -> None:
        cls = type(obj)
        tag("object", _qualified_name(cls).encode())
        self.callables.append(cls)
        if hasattr(obj, "__getstate__") and cls.__getstate__ is not object.__getstate__:
            state = obj.__getstate__()
        elif hasattr(obj, "__dict__"):
            state = vars(obj)
        elif hasattr(cls, "__slots__"):
            state = {s: getattr(obj, s) for s in cls.__slots__ if hasattr(obj, s)}
        else:
            reduced = obj.__reduce_ex__(4)
            state = reduced[1:] if isinstance(reduced, tuple) else reduced
        self._encode(state, h)


def argument_digest(obj: Any) -> str:
    """Canonical digest of a value, stable across interpreters and pickle round trips.

    Parameters
    ----------
    obj : Any
        Arguments to digest: plain Python values, containers, numpy arrays and generators,
        ASE ``Atoms``-like objects (by value: arrays, info, cell, pbc, constraints), or any
        object (by class name and state).

    Returns
    -------
    str
        Hex sha256 digest.
    """
    return _CanonicalEncoder().digest(obj).hex()


# --------------------------------------------------------------------------- code


@functools.lru_cache(maxsize=1)
def _library_dirs() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(stdlib dirs, site-packages dirs), as absolute paths."""
    paths = sysconfig.get_paths()
    stdlib = {paths["stdlib"], paths["platstdlib"]}
    site = {paths["purelib"], paths["platlib"]}
    for prefix in {sys.base_prefix, sys.prefix}:
        stdlib.add(sysconfig.get_paths(vars={"base": prefix, "platbase": prefix})["stdlib"])
    site_only = {os.path.realpath(p) for p in site}
    std_only = {os.path.realpath(p) for p in stdlib} - site_only
    return tuple(sorted(std_only)), tuple(sorted(site_only))


def _module_kind(module_name: str | None) -> str:
    """'user', 'stdlib', 'third-party' or 'builtin' for the module defining an object."""
    if not module_name:
        return "builtin"
    top = module_name.split(".")[0]
    if top in ALWAYS_FINGERPRINTED_PACKAGES:
        return "user"
    if top in sys.builtin_module_names:
        return "builtin"
    module = sys.modules.get(module_name)
    filename = getattr(module, "__file__", None)
    if filename is None:
        return "user" if module_name == "__main__" else "builtin"
    real = os.path.realpath(filename)
    std_dirs, site_dirs = _library_dirs()
    if any(real.startswith(d + os.sep) for d in site_dirs) or "site-packages" in real:
        return "third-party"
    if any(real.startswith(d + os.sep) for d in std_dirs):
        return "stdlib"
    return "user"


@functools.cache
def _distribution_version(top_level_module: str) -> str:
    dists = importlib.metadata.packages_distributions().get(top_level_module, [])
    versions = []
    for dist in sorted(set(dists)):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            versions.append(f"{dist}=={importlib.metadata.version(dist)}")
    return ",".join(versions) or "unknown-version"


class _StripDocstrings(ast.NodeTransformer):
    """Removes docstrings, so documentation edits do not change the fingerprint."""

    def _strip(self, node: Any) -> Any:
        self.generic_visit(node)
        body = node.body
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = visit_Module = _strip


def _normalised_source(obj: Any) -> str | None:
    """AST dump of an object's source without comments, docstrings or positions."""
    try:
        source = textwrap.dedent(inspect.getsource(obj))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return None
    if isinstance(obj, types.FunctionType) and obj.__name__ == "<lambda>":
        # getsource gives the whole line; keep only the lambda expressions in it
        lambdas = [n for n in ast.walk(tree) if isinstance(n, ast.Lambda)]
        return "|".join(ast.dump(n, include_attributes=False) for n in lambdas)
    return ast.dump(_StripDocstrings().visit(tree), include_attributes=False)


def _code_names(code: types.CodeType) -> set[str]:
    """Global and attribute names used by a code object and the code objects nested in it."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _reached_objects(obj: Any) -> Iterable[Any]:
    """Functions, classes and modules an object's code refers to by name."""
    if isinstance(obj, type):
        for value in vars(obj).values():
            if isinstance(value, staticmethod | classmethod):
                value = value.__func__
            if isinstance(value, property):
                yield from (f for f in (value.fget, value.fset, value.fdel) if f)
            elif isinstance(value, types.FunctionType):
                yield value
        yield from (b for b in obj.__bases__ if b is not object)
        return
    if not isinstance(obj, types.FunctionType):
        return
    names = _code_names(obj.__code__)
    scope = obj.__globals__
    found = [scope[n] for n in names if n in scope]
    if obj.__closure__:
        found += [c.cell_contents for c in obj.__closure__ if _cell_is_set(c)]
    for value in found:
        if isinstance(value, types.ModuleType):
            if _module_kind(value.__name__) != "user":
                yield value  # counted by package version; its attributes are not followed
                continue
            # `helpers.do_thing(...)`: follow the attributes this code uses on the module
            for n in names:
                attr = getattr(value, n, None)
                if isinstance(attr, types.FunctionType | type):
                    yield attr
            yield value
        elif isinstance(value, types.FunctionType | type | functools.partial):
            yield value.func if isinstance(value, functools.partial) else value


def _cell_is_set(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - probing an empty closure cell raises ValueError
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=1024)
def code_fingerprint(*funcs: Callable) -> str:
    """Fingerprint of the code of ``funcs`` and what they reach in user code.

    Parameters
    ----------
    *funcs : callable
        Functions or classes. Functions and classes they refer to by (global or closure)
        name are followed when they live in user code or in ``wfl``; third-party packages
        contribute their installed distribution version; the standard library contributes
        nothing but the Python minor version.

    Returns
    -------
    str
        Hex sha256 digest. Editing a comment or docstring leaves it unchanged.
    """
    h = hashlib.sha256(f"python{sys.version_info[0]}.{sys.version_info[1]}".encode())
    seen: set[int] = set()
    parts: list[str] = []
    stack = list(funcs)
    while stack:
        obj = stack.pop()
        if isinstance(obj, types.MethodType):
            obj = obj.__func__
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        module_name = getattr(obj, "__module__", None) or getattr(obj, "__name__", None)
        if isinstance(obj, types.ModuleType):
            module_name = obj.__name__
        kind = _module_kind(module_name)
        if kind == "third-party":
            top = module_name.split(".")[0]
            parts.append(f"pkg:{top}:{_distribution_version(top)}")
            continue
        if kind in ("stdlib", "builtin") or isinstance(obj, types.ModuleType):
            continue
        source = _normalised_source(obj)
        if source is None and isinstance(obj, types.FunctionType):
            # no source (e.g. exec'd code): fall back on the byte code and constants
            source = repr((obj.__code__.co_code, obj.__code__.co_consts, obj.__code__.co_names))
        parts.append(
            f"code:{_qualified_name(obj)}:{hashlib.sha256(str(source).encode()).hexdigest()}"
        )
        stack.extend(_reached_objects(obj))
    for part in sorted(set(parts)):
        h.update(part.encode() + b"\n")
    return h.hexdigest()


# --------------------------------------------------------------------------- files and keys


def input_files_digest(
    input_files: Iterable[str | os.PathLike], base_dir: str | None = None
) -> str:
    """Digest of input file names (as given) and contents; directories are walked in order.

    Parameters
    ----------
    input_files : iterable of path-like
        Files or directories staged into the job; relative paths resolve against ``base_dir``.
    base_dir : str, optional
        Directory relative paths refer to (default: the current directory).

    Raises
    ------
    FileNotFoundError
        Naming the missing input file and the directory it was looked for in.
    """
    h = hashlib.sha256()
    base = Path(base_dir or os.getcwd())
    for name in input_files:
        path = base / name
        if not path.exists():
            raise FileNotFoundError(
                f"input file {str(name)!r} does not exist (looked in {base}); "
                "fix the input_files list or create the file"
            )
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        h.update(f"name:{name}\n".encode())
        for f in files:
            h.update(f"file:{f.relative_to(path) if f != path else '.'}\n".encode())
            with open(f, "rb") as fh:
                for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class JobKey:
    """The identity of one queued call.

    Attributes
    ----------
    call_digest : str
        Function identity + canonical arguments (minus ``hash_ignore``) + input files.
    code_fingerprint : str
        Code of the function and of callables found in its arguments, see :func:`code_fingerprint`.
    """

    call_digest: str
    code_fingerprint: str

    @property
    def key(self) -> str:
        """Digest of both halves: equal keys mean "same call, same code"."""
        return hashlib.sha256(f"{self.call_digest}:{self.code_fingerprint}".encode()).hexdigest()


def job_key(
    function: Callable,
    args: Iterable[Any] = (),
    kwargs: dict[str, Any] | None = None,
    input_files: Iterable[str | os.PathLike] = (),
    hash_ignore: Iterable[str] = (),
    base_dir: str | None = None,
) -> JobKey:
    """Compute the :class:`JobKey` of ``function(*args, **kwargs)``.

    Parameters
    ----------
    function : callable
        The function the job will call.
    args, kwargs
        Its arguments. Arguments named in ``hash_ignore`` (keyword names, or positional
        parameters' names when the signature can be bound) are left out of the digest.
    input_files : iterable of path-like
        Files staged into the job; names and bytes enter the digest.
    hash_ignore : iterable of str
        Argument names to leave out (e.g. an initializer that pickles non-deterministically).
    base_dir : str, optional
        Directory that relative ``input_files`` refer to.
    """
    args = list(args)
    kwargs = dict(kwargs or {})
    ignore = set(hash_ignore)
    try:
        bound = inspect.signature(function).bind_partial(*args, **kwargs)
        arguments: Any = {k: v for k, v in bound.arguments.items() if k not in ignore}
    except (TypeError, ValueError):
        arguments = (args, {k: v for k, v in kwargs.items() if k not in ignore})
    encoder = _CanonicalEncoder()
    h = hashlib.sha256()
    h.update(_qualified_name(function).encode() + b"\n")
    h.update(encoder.digest(arguments))
    h.update(input_files_digest(input_files, base_dir).encode())
    unique_callables = list(dict.fromkeys(c for c in encoder.callables if _hashable(c)))
    fingerprint = code_fingerprint(function, *unique_callables)
    return JobKey(call_digest=h.hexdigest(), code_fingerprint=fingerprint)


# --------------------------------------------------------------------------- helpers


def _qualified_name(obj: Any) -> str:
    module = getattr(obj, "__module__", None) or ""
    name = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", None) or repr(type(obj))
    return f"{module}:{name}"


def _is_numpy_array(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.ndarray)


def _is_numpy_scalar(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.generic)


def _is_numpy_generator(obj: Any) -> bool:
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.random.Generator)


def _is_atoms_like(obj: Any) -> bool:
    # duck typing: expyre must not import ASE
    return all(hasattr(obj, a) for a in ("arrays", "info", "get_cell", "get_pbc", "get_positions"))


def _hashable(obj: Any) -> bool:
    try:
        hash(obj)
    except TypeError:
        return False
    return True
