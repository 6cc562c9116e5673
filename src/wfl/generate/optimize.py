"""Geometry optimisation (positions, and the cell at a given pressure) with ASE optimizers."""

from __future__ import annotations

import logging
from typing import Any

from ase import Atoms, units
from ase.filters import FrechetCellFilter

from wfl.autoparallelize import autoparallelize, autoparallelize_docstring
from wfl.configset import LOC_KEY, ConfigSet
from wfl.utils.calc import (
    calculation_errors,
    construct_calculator_picklesafe,
    reset_calculator,
)
from wfl.utils.results import save_results

logger = logging.getLogger(__name__)

TRAJ_SUBSELECT_CHOICES = ("last", "last_converged", None)
_SAVED_PROPERTIES = ("energy", "forces", "stress")


def _optimizer_class(optimizer: str | type) -> type:
    if isinstance(optimizer, type):
        return optimizer
    import ase.optimize

    if optimizer == "PreconLBFGS":
        from ase.optimize.precon import PreconLBFGS

        return PreconLBFGS
    cls = getattr(ase.optimize, str(optimizer), None)
    if not isinstance(cls, type):
        raise ValueError(
            f"optimizer={optimizer!r} is not an optimizer in ase.optimize; "
            "use e.g. 'BFGS', 'LBFGS', 'FIRE', 'PreconLBFGS' or pass the class"
        )
    return cls


def _snapshot(atoms: Atoms, prefix: str, step: int) -> Atoms:
    """A copy of ``atoms`` with the current results in info/arrays and no calculator."""
    frame = atoms.copy()
    save_results(frame, atoms.calc.results, prefix, _SAVED_PROPERTIES)
    frame.info[f"{prefix}step"] = int(step)
    return frame


def _optimize_one(
    atoms: Atoms,
    calc: Any,
    optimizer_class: type,
    fmax: float,
    steps: int,
    pressure: float | None,
    optimizer_kwargs: dict,
    traj_step_interval: int,
    traj_subselect: str | None,
    prefix: str,
) -> Atoms | list[Atoms] | None:
    atoms.calc = reset_calculator(calc)
    target = atoms
    if pressure is not None:
        target = FrechetCellFilter(atoms, scalar_pressure=pressure * units.GPa)
    opt = optimizer_class(target, logfile=None, **optimizer_kwargs)
    frames: list[Atoms] = []
    if traj_subselect is None:
        opt.attach(lambda: frames.append(_snapshot(atoms, prefix, opt.nsteps)), traj_step_interval)
    converged = bool(opt.run(fmax=fmax, steps=steps))
    if not frames or frames[-1].info[f"{prefix}step"] != opt.nsteps:
        frames.append(_snapshot(atoms, prefix, opt.nsteps))
    atoms.calc = None
    for frame in frames:
        frame.info[f"{prefix}converged"] = converged
        frame.info[f"{prefix}n_steps"] = int(opt.nsteps)
    if traj_subselect is None:
        return frames
    if traj_subselect == "last_converged" and not converged:
        return None
    return frames[-1]


def _optimize(
    atoms_list: list[Atoms],
    calculator: Any,
    fmax: float = 1.0e-3,
    steps: int = 1000,
    pressure: float | None = None,
    optimizer: str | type = "BFGS",
    optimizer_kwargs: dict | None = None,
    traj_step_interval: int = 1,
    traj_subselect: str | None = "last",
    results_prefix: str = "optimize_",
) -> list:
    """Relax atomic positions, and the cell too when ``pressure`` is given.

    Parameters
    ----------
    atoms_list : list of Atoms
        Configurations to relax (changed in place).
    calculator : Calculator or (CalculatorClass, args, kwargs)
        Calculator, or a tuple to build it in the worker.
    fmax : float, default 1e-3
        Convergence threshold on the largest force, in eV/Å (for a cell relaxation the
        stress, scaled by the cell filter, counts too).
    steps : int, default 1000
        Maximum number of optimizer steps.
    pressure : float or None, default None
        External pressure in GPa. None: fixed cell. A number (e.g. 0.0): the cell relaxes
        too, through ASE's ``FrechetCellFilter``.
    optimizer : str or class, default "BFGS"
        Name of an optimizer in ``ase.optimize`` (or ``"PreconLBFGS"``), or the class.
    optimizer_kwargs : dict, optional
        Extra arguments of the optimizer, e.g. ``{"maxstep": 0.1}`` (Å).
    traj_step_interval : int, default 1
        With ``traj_subselect=None``, keep every n-th step (the final one always).
    traj_subselect : "last", "last_converged" or None, default "last"
        "last": one output per input, the final structure. "last_converged": the same, but
        an input that did not converge counts as failed. None: the whole trajectory, stored
        under the input's location.
    results_prefix : str, default "optimize_"
        Prefix of the ``info``/``arrays`` keys: ``energy`` (eV), ``forces`` (eV/Å),
        ``stress`` (eV/Å³, when computed), ``step``, ``converged``, ``n_steps``.

    Returns
    -------
    list
        Per input: the relaxed Atoms, its trajectory (list), or None if the calculator
        failed (ASE ``CalculatorError`` or wfl's ``CalculationFailed``) or it did not converge with "last_converged".
    """
    if traj_subselect not in TRAJ_SUBSELECT_CHOICES:
        raise ValueError(
            f"traj_subselect={traj_subselect!r} is not one of {TRAJ_SUBSELECT_CHOICES}"
        )
    if int(traj_step_interval) < 1:
        raise ValueError(f"traj_step_interval={traj_step_interval} must be >= 1")
    calc = construct_calculator_picklesafe(calculator)
    optimizer_class = _optimizer_class(optimizer)
    results = []
    for atoms in atoms_list:
        try:
            result = _optimize_one(
                atoms,
                calc,
                optimizer_class,
                fmax,
                steps,
                pressure,
                dict(optimizer_kwargs or {}),
                int(traj_step_interval),
                traj_subselect,
                results_prefix,
            )
        except calculation_errors() as exc:
            # one bad configuration must not stop the batch: it counts as failed
            logger.warning("optimize: calculator failed on %s: %s", atoms.info.get(LOC_KEY), exc)
            result = None
        results.append(result)
    return results


def optimize(*args: Any, **kwargs: Any) -> ConfigSet:
    return autoparallelize(
        _optimize, *args, default_autopara_info={"num_inputs_per_python_subprocess": 1}, **kwargs
    )


autoparallelize_docstring(optimize, _optimize, "Atoms")
