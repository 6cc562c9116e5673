"""Print the public API of the installed ``expyre`` and ``wfl`` as JSON.

Run as ``python api_surface.py`` with either implementation's Python. For every importable
module: the classes and functions it defines itself (or lists in ``__all__``), each
function's parameter names, and each class's public members with their parameter names.
Names a module merely imports from elsewhere are left out, so the comparison in
``test_api_surface.py`` sees the API, not incidental imports.
"""

from __future__ import annotations

import importlib
import inspect
import json
import pkgutil
import sys
import warnings


def _params(obj) -> list[str] | None:
    try:
        return [p.name for p in inspect.signature(obj).parameters.values()]
    except (TypeError, ValueError):
        return None


def _members(cls: type) -> dict[str, list[str] | None]:
    out = {}
    for name in dir(cls):
        if name.startswith("_") and name != "__init__":
            continue
        try:
            value = getattr(cls, name)
        except Exception:  # noqa: BLE001 - a descriptor that fails on the class: skip it
            continue
        out[name] = _params(value) if callable(value) else None
    return out


def module_api(module) -> dict:
    exported = set(getattr(module, "__all__", []) or [])
    api = {}
    for name in sorted(set(vars(module)) | exported):
        if name.startswith("_"):
            continue
        try:
            obj = getattr(module, name)
        except AttributeError:
            continue
        if inspect.ismodule(obj):
            continue
        if name not in exported and getattr(obj, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(obj):
            api[name] = {"kind": "class", "members": _members(obj)}
        elif callable(obj):
            api[name] = {"kind": "function", "params": _params(obj)}
    return api


def surface(packages=("expyre", "wfl")) -> dict:
    warnings.simplefilter("ignore")
    result = {}
    for top in packages:
        package = importlib.import_module(top)
        names = [top] + [m.name for m in pkgutil.walk_packages(package.__path__, top + ".")]
        for name in names:
            if name.endswith("__main__"):
                continue
            try:
                result[name] = module_api(importlib.import_module(name))
            except Exception as exc:  # noqa: BLE001 - recorded: e.g. an optional dependency
                result[name] = {"__import_error__": type(exc).__name__}
    return result


if __name__ == "__main__":
    json.dump(surface(), sys.stdout, indent=0, sort_keys=True)
