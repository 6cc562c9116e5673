"""Calculators given as instances or as picklable ``(Class, args, kwargs)`` tuples."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ase.calculators.calculator import CalculatorError


class CalculationFailed(RuntimeError):
    """A file-based calculation failed; ``rundir`` is where its files were kept.

    Defined here, below the calculators, so the code that tells a failed calculation from a
    bug (:func:`calculation_errors`) needs nothing from the layer above it.
    """

    def __init__(self, message: str, rundir: Path | None = None):
        super().__init__(message)
        self.rundir = rundir


class CalculatorSpecError(ValueError, RuntimeError):
    """A calculator given in a form that cannot build one.

    Both a ``ValueError`` (bad input) and the ``RuntimeError`` wfl 0.3.5 raised for it, so
    handlers written for either catch it.
    """


def construct_calculator_picklesafe(calculator: Any) -> Any:
    """Return a calculator instance, building it if given as a tuple.

    A tuple travels to pool workers and queued jobs as plain data and the calculator is
    built there, which also works for calculators that cannot be pickled.

    Parameters
    ----------
    calculator : Calculator, or tuple
        An ASE calculator instance (returned as is), or ``(CalculatorClass, args, kwargs)``;
        ``(CalculatorClass,)`` and ``(CalculatorClass, args)`` are accepted too.

    Returns
    -------
    Calculator

    Raises
    ------
    CalculatorSpecError
        (a ``ValueError`` and ``RuntimeError``) If the tuple is not of the form
        ``(callable, list/tuple, dict)``.
    """
    if not isinstance(calculator, tuple | list):
        if calculator is None:
            raise CalculatorSpecError(
                "calculator is None; give a calculator or a (Class, args, kwargs) tuple"
            )
        return calculator
    parts = list(calculator)
    if not 1 <= len(parts) <= 3 or not callable(parts[0]):
        raise CalculatorSpecError(
            f"calculator {calculator!r} is not a (CalculatorClass, args, kwargs) tuple; "
            "e.g. (EMT, [], {})"
        )
    cls = parts[0]
    args = parts[1] if len(parts) > 1 else ()
    kwargs = parts[2] if len(parts) > 2 else {}
    if not isinstance(args, Sequence) or isinstance(args, str) or not isinstance(kwargs, Mapping):
        raise CalculatorSpecError(
            f"calculator tuple for {getattr(cls, '__name__', cls)} needs args as a list and "
            f"kwargs as a dict, got {type(args).__name__} and {type(kwargs).__name__}"
        )
    return cls(*args, **dict(kwargs))


def calculator_class(calculator: Any) -> type | None:
    """The class of a calculator given as instance or tuple (None if it cannot be told)."""
    if isinstance(calculator, tuple | list):
        return calculator[0] if calculator and isinstance(calculator[0], type) else None
    return type(calculator) if calculator is not None else None


def calculation_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "this configuration's calculation failed", not "a bug".

    ASE's ``CalculatorError`` family, and wfl's file-based calculators' ``CalculationFailed``
    (raised after the failure was flagged in ``atoms.info``).
    """
    return (CalculatorError, CalculationFailed)


def reset_calculator(calc: Any) -> Any:
    """Forget everything ``calc`` remembers from the previous configuration.

    One calculator serves all items of a chunk. Without a reset, state such as EMT's
    neighbour list carries over from one item to the next and changes results in the last
    bits, so they would depend on the chunk size. ASE's ``reset()`` drops the cached atoms,
    which makes the next calculation re-initialise from scratch.
    """
    reset = getattr(calc, "reset", None)
    if callable(reset):
        reset()
    return calc
