"""The job life cycle: state properties and the poll's decision, as tables (no I/O at all)."""

import pytest

from expyre.lifecycle import (
    ALLOWED_TRANSITIONS,
    Decision,
    JobState,
    Move,
    Need,
    Observation,
    decide,
)
from expyre.schedulers.base import QueueState as Q

NOW = 10_000.0
GRACE = 60.0


def _row(status="submitted", queue_state=None, left_queue_at=None):
    return {"status": status, "queue_state": queue_state, "left_queue_at": left_queue_at}


def test_state_properties_and_plain_string_values():
    assert [s for s in JobState if s.is_live] == [JobState.SUBMITTED, JobState.STARTED]
    assert {s for s in JobState if s.is_final} == {"succeeded", "failed", "died", "processed"}
    assert JobState("died") == "died" and f"{JobState.STALE}" == "stale"
    assert set(ALLOWED_TRANSITIONS) == set(JobState)
    # nothing leaves cleaned; stale only to cleaned; nothing moves to itself
    assert ALLOWED_TRANSITIONS[JobState.CLEANED] == {}
    assert set(ALLOWED_TRANSITIONS[JobState.STALE]) == {JobState.CLEANED}
    assert all(state not in edges for state, edges in ALLOWED_TRANSITIONS.items())
    # every "back to created" edge of a job with an outcome is a rerun decision only
    for state in JobState:
        if state.is_final:
            assert ALLOWED_TRANSITIONS[state][JobState.CREATED] == Move.RERUN


# (case, row, observation, expected decision)
CASES = [
    # -- still in the queue
    ("waiting, unchanged", _row(queue_state="queued"), Observation(queue=Q.QUEUED), Decision()),
    (
        "queue state changes",
        _row(queue_state="queued"),
        Observation(queue=Q.HELD),
        Decision(fields={"queue_state": "held", "left_queue_at": None}),
    ),
    (
        "seen running: started",
        _row(queue_state="queued"),
        Observation(queue=Q.RUNNING),
        Decision(JobState.STARTED, {"queue_state": "running"}),
    ),
    (
        "started, still running",
        _row("started", "running"),
        Observation(queue=Q.RUNNING),
        Decision(),
    ),
    (
        "back in the queue after a gap: the gap is forgotten",
        _row("started", "running", left_queue_at=NOW - 5),
        Observation(queue=Q.RUNNING),
        Decision(fields={"queue_state": "running", "left_queue_at": None}),
    ),
    (
        "an unreadable queue state never kills a job",
        _row("started", "running"),
        Observation(queue=Q.UNKNOWN),
        Decision(fields={"queue_state": "unknown", "left_queue_at": None}),
    ),
    # -- out of the queue with a result: the result decides
    (
        "result ok",
        _row("started", "running"),
        Observation(queue=Q.COMPLETED, outcome="succeeded"),
        Decision(JobState.SUCCEEDED, {"queue_state": "completed"}),
    ),
    (
        "result is an exception",
        _row("started", "running"),
        Observation(queue=None, outcome="failed"),
        Decision(JobState.FAILED, {"queue_state": "running"}),
    ),
    (
        "a result wins over a kill",
        _row("started", "running"),
        Observation(queue=Q.TIMEOUT, outcome="succeeded"),
        Decision(JobState.SUCCEEDED, {"queue_state": "timeout"}),
    ),
    # -- out of the queue without a result
    (
        "killed by the queue: died at once",
        _row("started", "running"),
        Observation(queue=Q.OUT_OF_MEMORY),
        Decision(JobState.DIED, {"queue_state": "out_of_memory"}),
    ),
    (
        "not listed, no result: ask the accounting",
        _row("started", "running"),
        Observation(queue=None),
        Decision(need=Need.ACCOUNTING),
    ),
    (
        "accounting says killed: died at once",
        _row("started", "running"),
        Observation(queue=None, accounting=Q.NODE_FAIL, accounting_asked=True),
        Decision(JobState.DIED, {"queue_state": "node_fail"}),
    ),
    (
        "first seen gone: the grace period starts",
        _row("started", "running"),
        Observation(queue=None, accounting=Q.COMPLETED, accounting_asked=True),
        Decision(fields={"left_queue_at": NOW}),
    ),
    (
        "within the grace period: wait",
        _row("started", "running", left_queue_at=NOW - GRACE + 1),
        Observation(queue=None, accounting_asked=True),
        Decision(),
    ),
    (
        "grace over: one last look first",
        _row("started", "running", left_queue_at=NOW - GRACE),
        Observation(queue=None, accounting_asked=True),
        Decision(need=Need.LAST_LOOK),
    ),
    (
        "the last look finds the result",
        _row("started", "running", left_queue_at=NOW - GRACE),
        Observation(queue=None, accounting_asked=True, looked_again=True, outcome="succeeded"),
        Decision(JobState.SUCCEEDED, {"queue_state": "running"}),
    ),
    (
        "nothing after the last look: died, as the accounting says",
        _row("started", "running", left_queue_at=NOW - GRACE),
        Observation(queue=None, accounting=Q.FAILED, accounting_asked=True, looked_again=True),
        Decision(JobState.DIED, {"queue_state": "failed"}),
    ),
    (
        "nobody knows what happened: vanished",
        _row("submitted", "queued", left_queue_at=NOW - 2 * GRACE),
        Observation(queue=None, accounting_asked=True, looked_again=True),
        Decision(JobState.DIED, {"queue_state": "vanished"}),
    ),
    # -- packed chunks: no accounting of their own
    (
        "claimed chunk whose allocation was killed: died as killed, after the grace",
        _row("started", "running", left_queue_at=NOW - GRACE),
        Observation(accounting_asked=True, looked_again=True, ended_as=Q.TIMEOUT, claimed=True),
        Decision(JobState.DIED, {"queue_state": "timeout"}),
    ),
    (
        "unclaimed chunk: never ran, back to created",
        _row("submitted", "queued", left_queue_at=NOW - GRACE),
        Observation(accounting_asked=True, looked_again=True, claimed=False),
        Decision(JobState.CREATED, {"remote_id": None}),
    ),
    (
        "unclaimed chunk within the grace: wait (the claim may show late)",
        _row("submitted", "queued"),
        Observation(accounting_asked=True, claimed=False),
        Decision(fields={"left_queue_at": NOW}),
    ),
]


@pytest.mark.parametrize(
    ("row", "seen", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_decide(row, seen, expected):
    assert decide(row, seen, NOW, GRACE) == expected


@pytest.mark.parametrize("status", [s for s in JobState if not s.is_live])
def test_jobs_not_in_a_queue_are_left_alone(status):
    for seen in (Observation(queue=Q.RUNNING), Observation(outcome="succeeded")):
        assert decide(_row(status), seen, NOW, GRACE) == Decision()


def test_zero_grace_dies_in_the_same_poll_and_records_when_it_left():
    seen = Observation(queue=None, accounting_asked=True, looked_again=True)
    decision = decide(_row("started", "running"), seen, NOW, 0.0)
    assert decision == Decision(JobState.DIED, {"left_queue_at": NOW, "queue_state": "vanished"})


def test_every_decided_move_is_an_allowed_life_move():
    """Whatever decide returns must pass the table (or the database would refuse it)."""
    for _, row, seen, _ in CASES:
        decision = decide(row, seen, NOW, GRACE)
        if decision.to is not None:
            assert decision.move in ALLOWED_TRANSITIONS[JobState(row["status"])][decision.to]
