"""The relaxation operation under its older name: ``from wfl.generate_configs.minim import run``.

``run(ci, co, calculator=(Vasp, [], vasp_kwargs), pressure=0.0)`` is
:func:`wfl.generate.optimize.optimize`: the same operation (so the same completion records
and job keys), defined here as its own function so ``WFL_EXPYRE_INFO`` keys can select it as
``generate_configs/minim.py::run``.
"""

from __future__ import annotations

from typing import Any

from wfl.autoparallelize import autoparallelize, autoparallelize_docstring
from wfl.configset import ConfigSet
from wfl.generate.optimize import _optimize

run_op = _optimize


def run(*args: Any, **kwargs: Any) -> ConfigSet:
    return autoparallelize(
        _optimize, *args, default_autopara_info={"num_inputs_per_python_subprocess": 1}, **kwargs
    )


autoparallelize_docstring(run, _optimize, "Atoms")
