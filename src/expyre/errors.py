"""Exceptions a user of expyre may want to catch (re-exported by :mod:`expyre.func`).

The names of expyre-wfl 0.1.6 keep working: ``ExPyReJobDiedError`` catches a job that died
without a result (killed by the queue, out of time or memory, node failure), and
``ExPyReTimeoutError`` catches giving up waiting. Our own classes derive from them.
"""

from __future__ import annotations

__all__ = [
    "CodeChangedError",
    "ExPyReJobDiedError",
    "ExPyReTimeoutError",
    "JobDiedError",
    "JobNotReady",
    "RemoteJobError",
]


class ExPyReJobDiedError(Exception):
    """A job was killed without its function raising (queue time or memory limit, node failure).

    Base of :class:`JobDiedError`, which is what expyre raises for such a job.
    """


class ExPyReTimeoutError(TimeoutError):
    """Gave up waiting for a job that is still queued or running. Base of :class:`JobNotReady`."""


class RemoteJobError(RuntimeError):
    """A queued job failed: its function raised, or the queue/machine killed it.

    A job that died without its function raising is raised as :class:`JobDiedError`
    (also an ``ExPyReJobDiedError``), chosen on construction from
    ``remote_exception_repr is None``, so every place that reports a failure gets it right.

    Attributes
    ----------
    job_id, job_name : str
    stage_dir : str
        Local stage directory (holds the job script, stdout and stderr).
    remote_exception_repr : str or None
        ``repr`` of the exception raised inside the job (None if it never raised one).
    remote_traceback : str or None
        The job's traceback text.
    stderr_tail : str
        Last lines of the job's stderr.
    queue_state : str or None
        What the queue said ("timeout", "cancelled", "out_of_memory", "node_fail",
        "vanished", ...) when the job died without a result.
    remote_exception : BaseException or None
        The exception object itself, when it could be unpickled here.
    failure_category : str or None
        Why it failed, one of :data:`expyre.failure.CATEGORIES` (``timeout``,
        ``out_of_memory``, ``node_failure``, ``cancelled``, ``exception``,
        ``bad_environment``, ``unknown``).
    failure_reason : str or None
        The evidence for that category, one sentence.
    """

    def __new__(cls, *args, **kwargs):
        if cls is RemoteJobError and kwargs.get("remote_exception_repr") is None:
            cls = JobDiedError
        return super().__new__(cls, *args)

    def __init__(
        self,
        *,
        job_id: str,
        job_name: str,
        stage_dir: str,
        remote_exception_repr: str | None = None,
        remote_traceback: str | None = None,
        stderr_tail: str = "",
        queue_state: str | None = None,
        remote_exception: BaseException | None = None,
        message: str | None = None,
        failure_category: str | None = None,
        failure_reason: str | None = None,
    ) -> None:
        self.job_id = job_id
        self.job_name = job_name
        self.stage_dir = stage_dir
        self.remote_exception_repr = remote_exception_repr
        self.remote_traceback = remote_traceback
        self.stderr_tail = stderr_tail
        self.queue_state = queue_state
        self.remote_exception = remote_exception
        self.message = message
        self.failure_category = failure_category
        self.failure_reason = failure_reason
        super().__init__(self._text())

    def _text(self) -> str:
        if self.remote_exception_repr is not None:
            head = f"job {self.job_name!r} ({self.job_id}) raised {self.remote_exception_repr}"
        else:
            head = (
                f"job {self.job_name!r} ({self.job_id}) died without a result "
                f"(queue state: {self.queue_state or 'unknown'})"
            )
        parts = [head]
        if self.failure_category:
            parts.append(f"failure category: {self.failure_category} ({self.failure_reason})")
        if self.message:
            parts.append(self.message)
        parts.append(f"job directory: {self.stage_dir}")
        if self.remote_exception_repr is not None and self.queue_state not in (
            None,
            "completed",
            "failed",
        ):
            parts.append(f"queue state: {self.queue_state}")
        tail = self.stderr_tail
        if self.remote_traceback:
            parts.append("remote traceback:\n" + self.remote_traceback.rstrip())
            tail = tail.replace(self.remote_traceback.rstrip(), "")  # the runner printed it too
        if tail.strip():
            parts.append("stderr (last lines):\n" + tail.strip("\n"))
        return "\n".join(parts)

    def __str__(self) -> str:
        return self._text()

    def __reduce__(self):  # keyword-only __init__: pickle through a helper
        return (_rebuild, (self.__dict__.copy(),))


def _rebuild(state: dict) -> RemoteJobError:
    state = dict(state)
    state.pop("remote_exception", None)
    err = RemoteJobError(**{k: v for k, v in state.items() if k != "args"})
    return err


class JobDiedError(RemoteJobError, ExPyReJobDiedError):
    """A queued job ended without a result and without its function raising.

    ``queue_state`` says what the queue reported ("timeout", "cancelled", "out_of_memory",
    "node_fail", "vanished", ...).
    """


class JobNotReady(ExPyReTimeoutError):
    """``get_results`` / ``wait_for_jobs`` timed out before the job(s) finished."""


class CodeChangedError(RuntimeError):
    """Raised inside a job that refuses to run: its code changed after it was submitted.

    Functions from importable modules are pickled by reference, so a job imports their code
    when it starts. Had the file been edited meanwhile, the job would compute with the new
    code under the key (and the cached result) of the old code.

    Attributes
    ----------
    changed : list of str
        ``module:qualname`` of each function or class whose code differs.
    """

    def __init__(self, changed: list[str]) -> None:
        self.changed = list(changed)
        shown = ", ".join(self.changed[:5]) + (
            f" and {len(self.changed) - 5} more" if len(self.changed) > 5 else ""
        )
        super().__init__(
            f"code changed since submission: {shown} differs from the code this job was "
            "submitted with (edited after the job was queued), so the job refused to run "
            "rather than compute with other code under the old code's key; rerun the "
            "script: it submits a new job for the edited code"
        )

    def __reduce__(self):
        return (CodeChangedError, (self.changed,))
