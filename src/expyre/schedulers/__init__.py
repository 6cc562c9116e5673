"""Scheduler backends: ``local`` (embedded), ``slurm``, ``sge``, ``pbs``.

:func:`get_scheduler` is the registry; backends other than ``local`` are imported lazily so
a missing or broken one never stops the others from working.
"""

from __future__ import annotations

import importlib
from typing import Any

from expyre.schedulers.base import JobRequest, QueueState, Scheduler

__all__ = [
    "LEGACY_CLASSES",
    "PBS",
    "SCHEDULER_CLASSES",
    "SGE",
    "JobRequest",
    "Local",
    "QueueState",
    "Scheduler",
    "Slurm",
    "get_scheduler",
    "schedulers",
]

#: config.json scheduler name -> "module:class"
SCHEDULER_CLASSES = {
    "local": "expyre.schedulers.local:LocalScheduler",
    "slurm": "expyre.schedulers.slurm:SlurmScheduler",
    "sge": "expyre.schedulers.sge:SGEScheduler",
    "pbs": "expyre.schedulers.pbs:PBSScheduler",
}

#: the same backends under expyre-wfl 0.1.6's class names, with 0.1.6's methods that run
#: queue commands (``submit``, ``status``, ``hold``, ``release``, ``cancel``)
LEGACY_CLASSES = {
    "local": "expyre.schedulers.local:Local",
    "slurm": "expyre.schedulers.slurm:Slurm",
    "sge": "expyre.schedulers.sge:SGE",
    "pbs": "expyre.schedulers.pbs:PBS",
}
_LEGACY_NAMES = {path.rpartition(":")[2]: name for name, path in LEGACY_CLASSES.items()}


def _load(path: str) -> type:
    module_name, _, class_name = path.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def __getattr__(name: str) -> Any:
    # loaded on first use, so a broken backend never stops the others from importing
    if name in _LEGACY_NAMES:
        return _load(LEGACY_CLASSES[_LEGACY_NAMES[name]])
    if name == "schedulers":  # 0.1.6's registry: config name -> class
        return {key: _load(path) for key, path in LEGACY_CLASSES.items()}
    raise AttributeError(f"module 'expyre.schedulers' has no attribute {name!r}")


def get_scheduler(name: str, *, system: Any = None, **options: Any) -> Scheduler:
    """Build the scheduler called ``name``.

    Parameters
    ----------
    name : str
        One of ``local``, ``slurm``, ``sge``, ``pbs``.
    system : expyre.system.System, optional
        Give the scheduler 0.1.6's command-running methods, run through this System
        (the class of :data:`LEGACY_CLASSES`); without it, the pure backend.
    **options
        Passed to the backend's constructor (``local`` needs ``queue_dir``, ``python_cmd``
        and ``partition_cores``; the others take none).

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if name not in SCHEDULER_CLASSES:
        raise ValueError(f"unknown scheduler {name!r}; use one of {sorted(SCHEDULER_CLASSES)}")
    if system is not None:
        return _load(LEGACY_CLASSES[name])(system=system, **options)
    module_name, _, class_name = SCHEDULER_CLASSES[name].partition(":")
    module = importlib.import_module(module_name)
    cls = getattr(module, class_name, None)
    if cls is None:  # tolerate a backend that names its class differently
        candidates = [
            v
            for v in vars(module).values()
            if isinstance(v, type)
            and issubclass(v, Scheduler)
            and v is not Scheduler
            and getattr(v, "name", None) == name
        ]
        if not candidates:
            raise ImportError(f"{module_name} defines no Scheduler subclass named {name!r}")
        cls = candidates[0]
    return cls(**options)
