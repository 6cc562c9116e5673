"""The life cycle of a job: its states, the one table of allowed moves, and the pure decision.

States::

    created -> submitted -> started -> succeeded -> processed -> cleaned
                   |           |    -> failed
                   +-----------+----> died      (left the queue without a result)
    any live or finished state -> stale         (same call, edited code; never reused)
    any state but created/stale/cleaned -> created   (an explicit decision to run again)

:data:`ALLOWED_TRANSITIONS` is the only rule for changing a job's state: every edge says
which kind of :class:`Move` may take it, so the jobs database (:mod:`expyre.jobsdb`) refuses
anything else in the same transaction that writes the change.

:func:`decide` is what a poll does with what it saw: from a job's row, its queue's answer,
the runner's outcome, the scheduler's accounting and the clock to a :class:`Decision`. It
does no I/O, so every case is tested with tables; :meth:`expyre.func.ExPyRe.apply` writes a
decision, and :mod:`expyre.poll` gathers the observations.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from expyre.schedulers.base import QueueState

__all__ = [
    "ALLOWED_TRANSITIONS",
    "Decision",
    "IllegalTransition",
    "JobState",
    "Move",
    "Need",
    "Observation",
    "check_move",
    "decide",
]


class IllegalTransition(RuntimeError):
    """A state change that the state machine does not allow (or a job that does not exist)."""


class JobState(enum.StrEnum):
    """Where a job is in its life; compares equal to its plain string (``"created"``...)."""

    CREATED = "created"
    SUBMITTED = "submitted"
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    DIED = "died"
    PROCESSED = "processed"
    STALE = "stale"
    CLEANED = "cleaned"

    @property
    def is_live(self) -> bool:
        """True when the job is (or may be) waiting or running in a queue."""
        return self in (JobState.SUBMITTED, JobState.STARTED)

    @property
    def is_final(self) -> bool:
        """True when the job will not change by itself any more (it has an outcome)."""
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.DIED, JobState.PROCESSED)


class Move(enum.Flag):
    """Why a job changes state; each edge of :data:`ALLOWED_TRANSITIONS` names the kinds
    that may take it, so e.g. a finished job goes back to ``created`` only on purpose."""

    #: the job's own life: submitted, seen by its queue, ended, consumed, cleaned
    LIFE = enum.auto()
    #: an explicit decision to run it again (``xpr reset_status``, ``force_rerun``, a
    #: resubmission by a failure policy)
    RERUN = enum.auto()
    #: the same call was made by other code: the old job is never reused
    CODE_CHANGED = enum.auto()


_S = JobState
_LIFE, _RERUN, _CODE = Move.LIFE, Move.RERUN, Move.CODE_CHANGED

ALLOWED_TRANSITIONS: dict[JobState, dict[JobState, Move]] = {
    _S.CREATED: {_S.SUBMITTED: _LIFE, _S.CLEANED: _LIFE, _S.STALE: _CODE},
    # back to "created" by its own life only when the submit command certainly did not queue
    # the job (or a packed chunk's allocations all ended without claiming it)
    _S.SUBMITTED: {
        _S.STARTED: _LIFE,
        _S.SUCCEEDED: _LIFE,
        _S.FAILED: _LIFE,
        _S.DIED: _LIFE,
        _S.STALE: _CODE,
        _S.CREATED: _LIFE | _RERUN,
    },
    _S.STARTED: {
        _S.SUCCEEDED: _LIFE,
        _S.FAILED: _LIFE,
        _S.DIED: _LIFE,
        _S.STALE: _CODE,
        _S.CREATED: _RERUN,
    },
    _S.SUCCEEDED: {_S.PROCESSED: _LIFE, _S.CLEANED: _LIFE, _S.STALE: _CODE, _S.CREATED: _RERUN},
    # a failed/died job is "processed" once its failure was reported or tolerated
    _S.FAILED: {_S.PROCESSED: _LIFE, _S.CLEANED: _LIFE, _S.STALE: _CODE, _S.CREATED: _RERUN},
    _S.DIED: {_S.PROCESSED: _LIFE, _S.CLEANED: _LIFE, _S.STALE: _CODE, _S.CREATED: _RERUN},
    _S.PROCESSED: {_S.CLEANED: _LIFE, _S.STALE: _CODE, _S.CREATED: _RERUN},
    _S.STALE: {_S.CLEANED: _LIFE},
    _S.CLEANED: {},
}


def check_move(job_id: str, current: str, target: str, move: Move | None = None) -> None:
    """Raise :class:`IllegalTransition` unless ``current -> target`` is allowed for ``move``.

    Parameters
    ----------
    job_id : str
        For the message.
    current, target : str
        States (plain strings or :class:`JobState`).
    move : Move, optional
        The kind of change; None accepts any kind the edge allows (an explicit choice of
        the target state, as ``xpr reset_status NEW_STATUS`` makes).
    """
    edges = ALLOWED_TRANSITIONS[JobState(current)]
    kinds = edges.get(JobState(target))
    if kinds is None:
        raise IllegalTransition(
            f"job {job_id}: {current!r} -> {target!r} is not allowed "
            f"(allowed: {sorted(str(s) for s in edges) or 'none'})"
        )
    if move is not None and not (kinds & move):
        wanted = " or ".join(k.name.lower() for k in Move if k in kinds)
        raise IllegalTransition(
            f"job {job_id}: {current!r} -> {target!r} is not allowed as {move.name.lower()} "
            f"(only as {wanted})"
        )


# ---------------------------------------------------------------------- the poll's decision


class Need(enum.Enum):
    """Information :func:`decide` needs before it can decide (ask, then call it again)."""

    #: ask the scheduler's accounting how the job ended
    ACCOUNTING = "accounting"
    #: copy the job's directory back once more and read its result again
    LAST_LOOK = "last_look"


@dataclass(frozen=True)
class Observation:
    """What one poll saw of a job.

    Attributes
    ----------
    queue : QueueState or None
        The queue's answer; None when the queue no longer lists the job.
    outcome : str or None
        ``"succeeded"``/``"failed"`` from the runner's result file, None if there is none.
    accounting : QueueState or None
        How the scheduler's accounting says the job ended (None: it does not know).
    accounting_asked : bool
        Whether ``accounting`` is an answer (False: not asked yet).
    looked_again : bool
        Whether ``outcome`` comes from the last look after the grace period.
    ended_as : QueueState or None
        How the job ended when known without accounting (a packed chunk's allocations);
        the queue state recorded if it is declared died.
    claimed : bool or None
        For a packed chunk, whether an allocation claimed it (None: not a packed chunk).
        An unclaimed chunk never ran: it goes back to ``created`` instead of dying.
    """

    queue: QueueState | None = None
    outcome: str | None = None
    accounting: QueueState | None = None
    accounting_asked: bool = False
    looked_again: bool = False
    ended_as: QueueState | None = None
    claimed: bool | None = None


@dataclass(frozen=True)
class Decision:
    """What to do with a job: move it, update some of its columns, or ask for more.

    Attributes
    ----------
    to : JobState or None
        The new state; None keeps the state (``fields`` may still change).
    fields : mapping
        Columns to set together with the state (queue_state, left_queue_at, remote_id).
    need : Need or None
        Not decided yet: gather this and call :func:`decide` again (``to`` and ``fields``
        are then empty).
    expect : frozenset of JobState
        States the job must still be in when the decision is written; another driver that
        moved it first wins.
    move : Move
        The kind of change, checked against :data:`ALLOWED_TRANSITIONS`.
    reason : str or None
        For the job's state history.
    """

    to: JobState | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    need: Need | None = None
    expect: frozenset[JobState] = frozenset({JobState.SUBMITTED, JobState.STARTED})
    move: Move = Move.LIFE
    reason: str | None = None

    @property
    def changes_anything(self) -> bool:
        """True when writing this decision changes the job's row."""
        return self.to is not None or bool(self.fields)


NOTHING = Decision()


def decide(row: Mapping[str, Any], seen: Observation, now: float, grace_s: float) -> Decision:
    """The next state of a queued or running job, from what a poll saw of it.

    Parameters
    ----------
    row : mapping
        The job's database row (``status``, ``queue_state``, ``left_queue_at`` are used).
    seen : Observation
        The queue's answer, the runner's outcome and the accounting.
    now : float
        The clock, unix seconds.
    grace_s : float
        Seconds a job may be out of the queue without a result before it is declared died:
        a shared filesystem can be slow to show the result file.

    Returns
    -------
    Decision
        Jobs not live (``row["status"]`` not submitted/started) get :data:`NOTHING`.
    """
    status = JobState(row["status"])
    if not status.is_live:
        return NOTHING
    queue = seen.queue
    if queue is not None and not queue.is_finished:
        if queue == QueueState.RUNNING and status == JobState.SUBMITTED:
            return Decision(JobState.STARTED, {"queue_state": queue.value})
        if row["queue_state"] != queue.value or row["left_queue_at"] is not None:
            return Decision(fields={"queue_state": queue.value, "left_queue_at": None})
        return NOTHING
    if seen.outcome is not None:
        queue_state = queue.value if queue is not None else row["queue_state"]
        return Decision(JobState(seen.outcome), {"queue_state": queue_state})
    if queue is not None and queue.was_killed:
        return Decision(JobState.DIED, {"queue_state": queue.value})
    if not seen.accounting_asked:
        return Decision(need=Need.ACCOUNTING)
    if seen.accounting is not None and seen.accounting.was_killed:
        return Decision(JobState.DIED, {"queue_state": seen.accounting.value})
    left_at = row["left_queue_at"]
    first_seen_gone = {"left_queue_at": now} if left_at is None else {}
    if now - (now if left_at is None else left_at) < grace_s:
        return Decision(fields=first_seen_gone)
    if not seen.looked_again:
        return Decision(need=Need.LAST_LOOK)
    if seen.claimed is False:
        # a packed chunk no allocation claimed before they all ended: it never ran
        return Decision(JobState.CREATED, {**first_seen_gone, "remote_id": None})
    final = seen.accounting or queue or seen.ended_as
    queue_state = final.value if final is not None else "vanished"
    return Decision(JobState.DIED, {**first_seen_gone, "queue_state": queue_state})
