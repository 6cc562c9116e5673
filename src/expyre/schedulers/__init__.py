"""Scheduler backends: ``local`` (embedded), ``slurm``, ``sge``, ``pbs``.

:func:`get_scheduler` is the registry; backends other than ``local`` are imported lazily so
a missing or broken one never stops the others from working.
"""

from __future__ import annotations

import importlib
from typing import Any

from expyre.schedulers.base import JobRequest, QueueState, Scheduler

__all__ = ["SCHEDULER_CLASSES", "JobRequest", "QueueState", "Scheduler", "get_scheduler"]

#: config.json scheduler name -> "module:class"
SCHEDULER_CLASSES = {
    "local": "expyre.schedulers.local:LocalScheduler",
    "slurm": "expyre.schedulers.slurm:SlurmScheduler",
    "sge": "expyre.schedulers.sge:SGEScheduler",
    "pbs": "expyre.schedulers.pbs:PBSScheduler",
}


def get_scheduler(name: str, **options: Any) -> Scheduler:
    """Build the scheduler called ``name``.

    Parameters
    ----------
    name : str
        One of ``local``, ``slurm``, ``sge``, ``pbs``.
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
