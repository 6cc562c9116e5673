"""Looking at a job during a poll, and settling it: the I/O around :func:`expyre.lifecycle.decide`.

:func:`observe` gathers what the decision needs (its directory copied back, the runner's
result read), :func:`settle` asks the decision and writes it through
:meth:`expyre.func.ExPyRe.apply`, taking the last look the decision asks for after the grace
period. Shared by plain jobs (:mod:`expyre.poll`) and packed chunks (:mod:`expyre.packing`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from expyre import stagedir
from expyre.lifecycle import Decision, Need, Observation, decide
from expyre.schedulers.base import QueueState

if TYPE_CHECKING:
    from expyre.func import ExPyRe
    from expyre.system import System

__all__ = ["died_grace_s", "fetch_back", "observe", "read_outcome", "settle"]


def died_grace_s() -> float:
    """Seconds a job may be out of the queue without a result before it is ``died``."""
    from expyre.envvars import env_seconds

    return env_seconds("EXPYRE_DIED_GRACE", 60.0)


def fetch_back(job: ExPyRe, system: System) -> None:
    """Copy the directory the job ran in back to its stage dir (nothing if they are one)."""
    remote_dir = job.row["remote_dir"]
    if remote_dir and remote_dir != str(job.stage_dir):
        system.stage_out(remote_dir, job.stage_dir)


def read_outcome(job: ExPyRe) -> str | None:
    """``"succeeded"``/``"failed"`` from the staged result file, or None if there is none yet."""
    record = stagedir.read_record(job.stage_dir)
    if record is None:
        return None
    return "succeeded" if record.get("ok") else "failed"


def observe(job: ExPyRe, system: System, queue: QueueState | None) -> Observation:
    """What a poll sees of a plain job given its queue's answer (None: not listed).

    A job out of the queue has its directory copied back and its result read; a waiting or
    running one costs nothing more.
    """
    if queue is not None and not queue.is_finished:
        return Observation(queue=queue)
    fetch_back(job, system)
    return Observation(queue=queue, outcome=read_outcome(job))


def settle(
    job: ExPyRe,
    system: System,
    seen: Observation,
    look_again: Callable[[ExPyRe, System, Observation], Observation] | None = None,
) -> Decision:
    """Decide a job's next state from ``seen`` and write it; the decision made.

    Parameters
    ----------
    job : ExPyRe
    system : System
        Where it runs (for the last look).
    seen : Observation
        With the accounting asked already, if the decision may need it.
    look_again : callable, optional
        ``look_again(job, system, seen) -> Observation`` for the last look after the grace period
        (default: copy the directory back and read the result again).

    Returns
    -------
    Decision
        As written (a decision that still needs the accounting is returned unwritten).
    """
    now = time.time()
    decision = decide(job.row, seen, now, died_grace_s())
    if decision.need is Need.LAST_LOOK:
        # one last look: the result file may have appeared since the first one
        if look_again is None:
            fetch_back(job, system)
            seen = dataclasses.replace(seen, outcome=read_outcome(job), looked_again=True)
        else:
            seen = look_again(job, system, seen)
        decision = decide(job.row, seen, now, died_grace_s())
    if decision.need is None:
        job.apply(decision)
    return decision
