"""Molecular dynamics with ASE integrators: NVE (velocity Verlet) or NVT (Langevin).

Every random number (initial velocities, Langevin noise) comes from the item's own
generator, spawned from the caller's ``rng`` in input order, so trajectories are
bit-identical whatever the pool size, chunk size or job split.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.md import velocitydistribution
from ase.md.langevin import Langevin
from ase.md.verlet import VelocityVerlet

from wfl.autoparallelize import autoparallelize, autoparallelize_docstring
from wfl.configset import LOC_KEY, ConfigSet
from wfl.utils.calc import (
    calculation_errors,
    construct_calculator_picklesafe,
    reset_calculator,
)
from wfl.utils.results import save_results

logger = logging.getLogger(__name__)

_SAVED_PROPERTIES = ("energy", "forces", "stress")


def _thermalize(atoms: Atoms, temperature: float, rng: np.random.Generator) -> None:
    # ASE 3.29 renamed MaxwellBoltzmannDistribution; both draw the same numbers from rng
    thermalize = getattr(velocitydistribution, "thermalize_momenta", None)
    if thermalize is None:
        thermalize = velocitydistribution.MaxwellBoltzmannDistribution
    thermalize(atoms, temperature_K=temperature, rng=rng)


def _snapshot(atoms: Atoms, prefix: str, step: int, dt: float) -> Atoms:
    frame = atoms.copy()
    save_results(frame, atoms.calc.results, prefix, _SAVED_PROPERTIES)
    frame.info[f"{prefix}step"] = int(step)
    frame.info[f"{prefix}time"] = float(step * dt)
    frame.info[f"{prefix}temperature"] = float(atoms.get_temperature())
    return frame


def _md_one(
    atoms: Atoms,
    calc: Any,
    rng: np.random.Generator,
    steps: int,
    dt: float,
    temperature: float | None,
    temperature_tau: float,
    init_temperature: float | None,
    traj_step_interval: int,
    traj_subselect: str | None,
    prefix: str,
) -> Atoms | list[Atoms]:
    atoms.calc = reset_calculator(calc)
    t_init = temperature if init_temperature is None else init_temperature
    if t_init is not None and not atoms.get_momenta().any():
        _thermalize(atoms, t_init, rng)
        velocitydistribution.Stationary(atoms)
    if temperature is None:
        dyn = VelocityVerlet(atoms, timestep=dt * units.fs, logfile=None)
    else:
        dyn = Langevin(
            atoms,
            timestep=dt * units.fs,
            temperature_K=temperature,
            friction=1.0 / (temperature_tau * units.fs),
            fixcm=False,  # fixcm=True is deprecated in ASE and samples NVT slightly wrongly
            rng=rng,
            logfile=None,
        )
    frames: list[Atoms] = []
    if traj_subselect is None:
        dyn.attach(
            lambda: frames.append(_snapshot(atoms, prefix, dyn.nsteps, dt)), traj_step_interval
        )
    dyn.run(steps)
    if not frames or frames[-1].info[f"{prefix}step"] != dyn.nsteps:
        frames.append(_snapshot(atoms, prefix, dyn.nsteps, dt))
    atoms.calc = None
    return frames if traj_subselect is None else frames[-1]


def _md(
    atoms_list: list[Atoms],
    calculator: Any,
    steps: int = 100,
    dt: float = 1.0,
    temperature: float | None = None,
    temperature_tau: float = 100.0,
    init_temperature: float | None = None,
    traj_step_interval: int = 1,
    traj_subselect: str | None = None,
    results_prefix: str = "md_",
    rng: list[np.random.Generator] | None = None,
) -> list:
    """Run molecular dynamics from each configuration.

    Parameters
    ----------
    atoms_list : list of Atoms
        Starting configurations (changed in place). Momenta already set are used as they
        are; otherwise velocities are drawn at ``init_temperature`` (or ``temperature``).
    calculator : Calculator or (CalculatorClass, args, kwargs)
        Calculator, or a tuple to build it in the worker.
    steps : int, default 100
        Number of time steps.
    dt : float, default 1.0
        Time step in fs.
    temperature : float or None, default None
        Thermostat temperature in K (Langevin). None: constant energy (velocity Verlet).
    temperature_tau : float, default 100.0
        Langevin relaxation time in fs (friction = 1 / tau).
    init_temperature : float or None, default None
        Temperature in K of the initial Maxwell-Boltzmann velocities; default
        ``temperature``; None with no thermostat: start at rest.
    traj_step_interval : int, default 1
        Keep every n-th step (the final one always).
    traj_subselect : None or "last", default None
        None: the whole (thinned) trajectory, under the input's location. "last": only the
        final configuration.
    results_prefix : str, default "md_"
        Prefix of ``info``/``arrays`` keys: ``energy`` (eV), ``forces`` (eV/Å), ``step``,
        ``time`` (fs), ``temperature`` (K).
    rng : list of numpy.random.Generator, optional
        One generator per configuration (given by autoparallelize from the caller's
        ``rng``). None: fresh unseeded generators, so results are not reproducible.

    Returns
    -------
    list
        Per input: its trajectory (list of Atoms), its final Atoms, or None if the
        calculator failed.
    """
    if traj_subselect not in (None, "last"):
        raise ValueError(f"traj_subselect={traj_subselect!r} must be None or 'last'")
    if int(traj_step_interval) < 1:
        raise ValueError(f"traj_step_interval={traj_step_interval} must be >= 1")
    calc = construct_calculator_picklesafe(calculator)
    rngs = rng if rng is not None else [np.random.default_rng() for _ in atoms_list]
    results = []
    for atoms, item_rng in zip(atoms_list, rngs, strict=True):
        try:
            result = _md_one(
                atoms,
                calc,
                item_rng,
                int(steps),
                float(dt),
                temperature,
                float(temperature_tau),
                init_temperature,
                int(traj_step_interval),
                traj_subselect,
                results_prefix,
            )
        except calculation_errors() as exc:
            logger.warning("md: calculator failed on %s: %s", atoms.info.get(LOC_KEY), exc)
            result = None
        results.append(result)
    return results


def md(*args: Any, **kwargs: Any) -> ConfigSet:
    return autoparallelize(
        _md, *args, default_autopara_info={"num_inputs_per_python_subprocess": 1}, **kwargs
    )


autoparallelize_docstring(md, _md, "Atoms")
