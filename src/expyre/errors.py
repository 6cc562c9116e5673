"""Exceptions a user of expyre may want to catch (re-exported by :mod:`expyre.func`).

The names of expyre-wfl 0.1.6 keep working: ``ExPyReJobDiedError`` catches a job that died
without a result (killed by the queue, out of time or memory, node failure), and
``ExPyReTimeoutError`` catches giving up waiting. Our own classes derive from them.
"""

from __future__ import annotations

import threading
import types

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

    A job that died without a result (``ended="died"``) is raised as :class:`JobDiedError`
    (also an ``ExPyReJobDiedError``), chosen on construction from ``ended``, so every place
    that reports a failure gets it right.

    When the function raised and its exception came back (``remote_exception``), the error
    is also an instance of that exception's class: constructing a ``RemoteJobError`` gives
    an object of a subclass of both (``RemoteValueError`` for a ``ValueError``, see
    :func:`remote_error_class`), so ``except ValueError:`` catches a remote ``ValueError``
    as it would have caught the same call run here, while the job's details stay
    available. Its ``args`` and attributes are those of the remote exception; ``str()``
    is the full report. Exceptions whose class cannot be combined (see
    :func:`remote_error_class`) come back as a plain ``RemoteJobError``.

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
    ended : str
        How the job ended: ``"raised"`` (its function raised), ``"refused"`` (the runner
        did not run the function: it could not load the call, the code changed since
        submission, or the value could not be saved) or ``"died"`` (no result at all:
        killed by the queue or the machine). Given by whoever read the job's outcome; when
        not given it is told from ``remote_exception_repr`` (None: died).
    """

    def __new__(cls, *args, **kwargs):
        if cls is not RemoteJobError:
            return super().__new__(cls, *args)
        if _ended(kwargs) == "died":
            return super().__new__(JobDiedError, *args)
        original = kwargs.get("remote_exception")
        mixed = remote_error_class(type(original)) if original is not None else None
        if mixed is not None:
            try:
                # the remote class's own __new__ (e.g. OSError's) builds the object: it
                # alone knows its memory layout
                return type(original).__new__(mixed, *original.args)
            except Exception:
                pass  # a __new__ that wants other arguments: the plain error still reports
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
        ended: str | None = None,
    ) -> None:
        self.ended = _ended({"ended": ended, "remote_exception_repr": remote_exception_repr})
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
        if remote_exception is not None and isinstance(self, type(remote_exception)):
            copy_exception_state(remote_exception, self)

    def _text(self) -> str:
        if self.ended != "died":
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


_OWN_ATTRIBUTES = frozenset(
    [
        "job_id",
        "job_name",
        "stage_dir",
        "remote_exception_repr",
        "remote_traceback",
        "stderr_tail",
        "queue_state",
        "remote_exception",
        "message",
        "failure_category",
        "failure_reason",
        "ended",
    ]
)

#: the values of :attr:`RemoteJobError.ended`
ENDINGS = ("raised", "refused", "died")


def _ended(kwargs: dict) -> str:
    """How a job ended: the given ``ended``, else told from whether it left an exception."""
    ended = kwargs.get("ended")
    if ended is None:
        return "died" if kwargs.get("remote_exception_repr") is None else "raised"
    if ended not in ENDINGS:
        raise ValueError(f"RemoteJobError ended={ended!r}; use one of {', '.join(ENDINGS)}")
    return ended


def _rebuild(state: dict) -> RemoteJobError:
    # the remote exception travels with the error when it pickles, so an error sent
    # between processes is still an instance of the remote exception's class
    return RemoteJobError(**{k: v for k, v in state.items() if k in _OWN_ATTRIBUTES})


# Exception classes whose instances must never be raised as something else: a remote
# KeyboardInterrupt or SystemExit is a failure of the job, not a request to stop *this*
# process (code that catches them to shut down cleanly must not see a job's failure).
_NEVER_COMBINED = (KeyboardInterrupt, SystemExit, GeneratorExit)

_COMBINED: dict[tuple[type, ...], type | None] = {}
_COMBINED_LOCK = threading.Lock()


def remote_error_class(exception_class: type) -> type | None:
    """The class raised for a remote exception of ``exception_class``, or None.

    A subclass of :class:`RemoteJobError` and ``exception_class`` (named ``Remote`` +
    its name, made once per class), so handlers for either catch it.

    Parameters
    ----------
    exception_class : type
        Class of the exception the job's function raised.

    Returns
    -------
    type or None
        None when the two cannot be combined: the class refuses subclasses (its
        ``__init_subclass__`` or metaclass raises), its layout conflicts with
        ``RemoteJobError``'s, or it is a ``KeyboardInterrupt``/``SystemExit``/
        ``GeneratorExit``, which must not stop this process. The error is then a plain
        ``RemoteJobError`` with the exception in ``remote_exception``.
    """
    if not isinstance(exception_class, type) or not issubclass(exception_class, BaseException):
        return None
    if issubclass(exception_class, RemoteJobError):
        # a nested job's error: it already is both (and takes RemoteJobError's arguments)
        return exception_class
    return combined_error_class(
        RemoteJobError, [exception_class], name="Remote" + exception_class.__name__
    )


def combined_error_class(
    base: type, exception_classes: list[type], name: str | None = None
) -> type | None:
    """A subclass of ``base`` and of every one of ``exception_classes`` (made once), or None.

    Lets an error that reports failures of queued jobs be caught by the handlers a
    script has for the exceptions those jobs raised (``except ValueError:``).

    Parameters
    ----------
    base : type
        The reporting error's own class; first, so its constructor and message win.
    exception_classes : list of type
        Classes to add. Process-stopping ones (``KeyboardInterrupt``, ``SystemExit``,
        ``GeneratorExit``) and those already implied by another in the list are left out.
    name : str, optional
        Class name (default ``Base[Name1, Name2]``).

    Returns
    -------
    type or None
        None when nothing is left to add or the classes cannot be combined (a class
        refusing subclasses, conflicting layouts or method orders).
    """
    extra: list[type] = []
    for klass in exception_classes:
        if issubclass(klass, _NEVER_COMBINED) or issubclass(base, klass) or klass in extra:
            continue
        extra.append(klass)
    # a class and its own base cannot both be listed (no method order): keep the subclass
    extra = [k for k in extra if not any(o is not k and issubclass(o, k) for o in extra)]
    if not extra:
        return None
    key = (base, *extra)
    with _COMBINED_LOCK:
        if key not in _COMBINED:
            label = name or f"{base.__name__}[{', '.join(k.__name__ for k in extra)}]"
            _COMBINED[key] = _make_combined(base, extra, label)
        return _COMBINED[key]


def _make_combined(base: type, extra: list[type], name: str) -> type | None:
    try:
        return types.new_class(
            name,
            (base, *extra),
            exec_body=lambda ns: ns.update(
                {
                    "__module__": base.__module__,
                    "__qualname__": name,
                    "__doc__": f"{base.__name__} that is also "
                    + ", ".join(k.__qualname__ for k in extra)
                    + ", so handlers for those catch it.",
                }
            ),
        )
    except Exception:  # refuses subclasses, or layouts/metaclasses that cannot be combined
        return None


# Per-instance slots of builtin exceptions (errno, filename, code, ...) live outside
# __dict__; they are copied too, except the ones that belong to this raise.
_NOT_COPIED = frozenset(
    ["args", "__traceback__", "__context__", "__cause__", "__suppress_context__", "__dict__"]
)


def copy_exception_state(source: BaseException, target: BaseException) -> None:
    """Give ``target`` the ``args`` and attributes of ``source`` (RemoteJobError's own
    attributes are kept)."""
    for klass in type(source).__mro__:
        for attr, descriptor in vars(klass).items():
            # dunders (e.g. object's __class__) describe the object, not the exception
            if (
                attr.startswith("__")
                or attr in _NOT_COPIED
                or not isinstance(
                    descriptor, types.MemberDescriptorType | types.GetSetDescriptorType
                )
            ):
                continue
            try:
                setattr(target, attr, getattr(source, attr))
            except (AttributeError, TypeError, ValueError):
                continue  # unset or read-only on this object: nothing to carry over
    for attr, value in getattr(source, "__dict__", {}).items():
        if attr not in _OWN_ATTRIBUTES:
            target.__dict__[attr] = value
    target.args = source.args


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
