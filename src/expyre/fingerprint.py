"""Code fingerprints: what a job's code is, so edited code is never mistaken for the same job.

The fingerprint covers the called function and the functions and classes it reaches in user
code and in registered client packages (:mod:`expyre.clients`; AST without comments, docstrings or positions); third-party packages
count by their installed distribution version, the standard library by the Python version.
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib.metadata
import inspect
import os
import sys
import sysconfig
import textwrap
import types
from collections.abc import Callable, Iterable
from typing import Any

from expyre.clients import fingerprinted_packages
from expyre.digest import qualified_name

__all__ = [
    "changed_code",
    "code_digests",
    "code_fingerprint",
    "module_file_digests",
]


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
    if top in fingerprinted_packages():
        # a client library's own code, wherever installed: editing its operations must
        # invalidate jobs just like editing the user's script
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
    from expyre import packages_distributions

    dists = packages_distributions().get(top_level_module, [])
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


def _object_digest(obj: Any) -> str:
    source = _normalised_source(obj)
    if source is None and isinstance(obj, types.FunctionType):
        # no source (e.g. exec'd code): fall back on the byte code and constants
        source = repr((obj.__code__.co_code, obj.__code__.co_consts, obj.__code__.co_names))
    return hashlib.sha256(str(source).encode()).hexdigest()


@functools.lru_cache(maxsize=1024)
def _parts(*funcs: Callable) -> tuple[str, ...]:
    """Sorted ``pkg:<top>:<version>`` and ``code:<module>:<qualname>:<digest>`` entries."""
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
        parts.append(f"code:{qualified_name(obj)}:{_object_digest(obj)}")
        stack.extend(_reached_objects(obj))
    return tuple(sorted(set(parts)))


def code_fingerprint(*funcs: Callable) -> str:
    """Fingerprint of the code of ``funcs`` and what they reach in user code.

    Parameters
    ----------
    *funcs : callable
        Functions or classes. Functions and classes they refer to by (global or closure)
        name are followed when they live in user code or in a registered client package
        (:func:`expyre.clients.register_client_package`); third-party packages
        contribute their installed distribution version; the standard library contributes
        nothing but the Python minor version.

    Returns
    -------
    str
        Hex sha256 digest. Editing a comment or docstring leaves it unchanged.
    """
    h = hashlib.sha256(f"python{sys.version_info[0]}.{sys.version_info[1]}".encode())
    for part in _parts(*funcs):
        h.update(part.encode() + b"\n")
    return h.hexdigest()


# the walk is what is cached (shared with code_digests); keep the cache_clear() that
# code_fingerprint had when it held the cache itself
code_fingerprint.cache_clear = _parts.cache_clear  # type: ignore[attr-defined]


def code_digests(*funcs: Callable) -> dict[str, str]:
    """Digest of each user-code function and class the fingerprint of ``funcs`` covers.

    Returns
    -------
    dict
        ``"module:qualname" -> sha256 of its normalised source``: what a job records so
        that, later, exactly the functions whose code changed can be named.
    """
    out = {}
    for part in _parts(*funcs):
        if part.startswith("code:"):
            name, digest = part[len("code:") :].rsplit(":", 1)
            out[name] = digest
    return out


def _resolve(name: str) -> list[Any]:
    """The code objects ``module:qualname`` names as importing it now gives ([] if none).

    A property stands for its getter, setter and deleter (they share its qualname).
    """
    import importlib

    module_name, _, qualname = name.partition(":")
    if module_name in ("", "__main__") or "<locals>" in qualname or "<lambda>" in qualname:
        return []  # pickled by value: its code travels inside the job and cannot change
    try:
        obj: Any = importlib.import_module(module_name)
        for attr in qualname.split("."):
            # the class __dict__ first: getattr would call a property or bind a method
            obj = (
                vars(obj)[attr]
                if isinstance(obj, type) and attr in vars(obj)
                else getattr(obj, attr)
            )
    except Exception:  # noqa: BLE001 - renamed or removed: nothing to compare against
        return []
    if isinstance(obj, property):
        return [f for f in (obj.fget, obj.fset, obj.fdel) if f is not None]
    if isinstance(obj, staticmethod | classmethod | types.MethodType):
        return [obj.__func__]
    return [obj]


_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}


def _file_digest(module_name: str) -> str | None:
    """sha256 of the source file of an imported module (None: no file, or __main__)."""
    module = sys.modules.get(module_name)
    path = getattr(module, "__file__", None)
    if module_name == "__main__" or not path:
        return None
    try:
        stat = os.stat(path)
        cache_key = (path, stat.st_mtime_ns, stat.st_size)
        if cache_key not in _FILE_DIGESTS:
            with open(path, "rb") as fh:
                _FILE_DIGESTS[cache_key] = hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None
    return _FILE_DIGESTS[cache_key]


def module_file_digests(recorded: dict[str, str]) -> dict[str, str]:
    """sha256 of the source file of each module named in ``code_digests(...)`` output.

    A job whose modules' files are byte for byte the same as at submission runs the same
    code, so :func:`changed_code` then skips the per-function comparison (parsing every
    function again would add a noticeable start-up cost to every job).
    """
    out = {}
    for module_name in sorted({name.partition(":")[0] for name in recorded}):
        digest = _file_digest(module_name)
        if digest is not None:
            out[module_name] = digest
    return out


def changed_code(recorded: dict[str, str], files: dict[str, str] | None = None) -> list[str]:
    """Names among ``recorded`` whose code, as importable now, differs from the recording.

    Parameters
    ----------
    recorded : dict
        ``code_digests(...)`` taken when the job was submitted.
    files : dict, optional
        ``module_file_digests(recorded)`` taken then: functions of a module whose file is
        unchanged are not compared one by one.

    Returns
    -------
    list of str
        ``module:qualname`` of every function or class that is imported by reference and
        whose normalised source changed. Objects pickled by value (``__main__``, local
        functions) are frozen inside the job and never count.
    """
    unchanged_modules = set()
    for module_name, digest in (files or {}).items():
        with contextlib.suppress(Exception):  # not importable: compared one by one below
            importlib.import_module(module_name)
        if _file_digest(module_name) == digest:
            unchanged_modules.add(module_name)
    changed = []
    for name, digest in sorted(recorded.items()):
        if name.partition(":")[0] in unchanged_modules:
            continue
        candidates = _resolve(name)
        if candidates and all(_object_digest(obj) != digest for obj in candidates):
            changed.append(name)
    return changed
