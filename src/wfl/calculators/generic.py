"""Evaluate any ASE calculator on every configuration: ``calculate(inputs, outputs, calculator)``.

The calculator is an instance, or a ``(CalculatorClass, args, kwargs)`` tuple built inside
each worker (for calculators that cannot be pickled, or should not be shared). A calculator
class may declare ``wfl_default_autopara_info`` (e.g. ``{"num_inputs_per_python_subprocess":
1}`` for expensive DFT), which is used under the caller's ``autopara_info``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ase import Atoms

from wfl.autoparallelize import autoparallelize, autoparallelize_docstring
from wfl.configset import LOC_KEY, ConfigSet
from wfl.utils.calc import (
    calculator_class,
    construct_calculator_picklesafe,
    reset_calculator,
)
from wfl.utils.results import save_results

__all__ = ["calculate", "construct_calculator_picklesafe"]

logger = logging.getLogger(__name__)

FAILED_KEY = "calculation_failed"
FAILED_MESSAGE_KEY = "calculation_failed_message"


def _default_properties(calc: Any, atoms: Atoms) -> list[str]:
    implemented = getattr(calc, "implemented_properties", ("energy", "forces", "stress"))
    props = [p for p in ("energy", "forces") if p in implemented]
    if "stress" in implemented and atoms.pbc.all():
        props.append("stress")
    return props


def _calculate(
    atoms_list: list[Atoms],
    calculator: Any,
    properties: Sequence[str] | None = None,
    output_prefix: str = "calc_",
    raise_calc_exceptions: bool = False,
) -> list[Atoms]:
    """Evaluate a calculator and store its results in ``info``/``arrays``.

    Parameters
    ----------
    atoms_list : list of Atoms
        Configurations (changed in place).
    calculator : Calculator or (CalculatorClass, args, kwargs)
        Calculator, or a tuple to build it in the worker.
    properties : list of str, optional
        ASE property names to compute and store. Default: energy and forces, and stress
        for fully periodic cells, where the calculator implements them; everything else the
        calculator produced on the way is stored too.
    output_prefix : str, default "calc_"
        Prefix of the result keys: ``info[prefix + "energy"]`` (eV), ``arrays[prefix +
        "forces"]`` (eV/Å), ``info[prefix + "stress"]`` (eV/Å³, Voigt), and any other
        result the calculator produced (per-atom ones in ``arrays``).
    raise_calc_exceptions : bool, default False
        False: a configuration whose calculation raises is kept, without results, with
        ``info["calculation_failed"] = True`` and the message in
        ``info["calculation_failed_message"]``. True: the exception propagates.

    Returns
    -------
    list of Atoms
        One per input, calculator detached.
    """
    calc = construct_calculator_picklesafe(calculator)
    results = []
    for atoms in atoms_list:
        atoms.calc = reset_calculator(calc)
        props = list(properties) if properties is not None else _default_properties(calc, atoms)
        try:
            for name in props:
                calc.get_property(name, atoms)
            # asked-for properties only; by default everything the calculator produced
            save_results(atoms, calc.results, output_prefix, properties)
        except Exception as exc:
            if raise_calc_exceptions:
                raise
            logger.warning(
                "calculate: %s failed on %s: %s",
                type(calc).__name__,
                atoms.info.get(LOC_KEY),
                exc,
            )
            # the calculator may have flagged it already, with more detail
            atoms.info.setdefault(FAILED_KEY, True)
            atoms.info.setdefault(FAILED_MESSAGE_KEY, f"{type(exc).__name__}: {exc}")
        atoms.calc = None
        results.append(atoms)
    return results


def calculate(*args: Any, **kwargs: Any) -> ConfigSet:
    calculator = kwargs.get("calculator", args[2] if len(args) > 2 else None)
    cls = calculator_class(calculator)
    defaults = dict(getattr(cls, "wfl_default_autopara_info", None) or {})
    defaults.setdefault("num_inputs_per_python_subprocess", 10)
    return autoparallelize(_calculate, *args, default_autopara_info=defaults, **kwargs)


autoparallelize_docstring(calculate, _calculate, "Atoms")
