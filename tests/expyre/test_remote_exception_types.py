"""A job's exception comes back as an instance of its own class and of RemoteJobError.

Scripts written for expyre-wfl 0.1.6 catch a remote failure with the remote exception's
class (``except ValueError:``), because 0.1.6 re-raised the remote exception itself. Here
the raised error is of a class derived from both ``RemoteJobError`` and the remote class,
so those handlers still work and the job's details (traceback, job directory) stay there.
"""

import pickle

import pytest
from expyre_testutil import FinalError, UserDefinedError, raise_exception

from expyre.errors import CodeChangedError, JobDiedError, RemoteJobError, remote_error_class
from expyre.func import ExPyRe

ONE_CORE = {"num_cores": 1, "max_time": "10m"}


def _error(exc):
    return RemoteJobError(
        job_id="j1", job_name="relax", stage_dir="/tmp/x",
        remote_exception_repr=repr(exc), remote_exception=exc,
    )  # fmt: skip


def test_builtin_exception_is_caught_by_its_own_class():
    err = _error(ValueError("bad value"))
    assert isinstance(err, ValueError) and isinstance(err, RemoteJobError)
    assert type(err).__name__ == "RemoteValueError"
    assert err.args == ("bad value",)  # as the remote exception's
    assert "raised ValueError('bad value')" in str(err) and "/tmp/x" in str(err)
    with pytest.raises(ValueError, match="bad value"):
        raise err
    # one class per remote class, so handlers and type comparisons are stable
    assert type(_error(ValueError("other"))) is type(err)


def test_oserror_attributes_are_carried_over():
    err = _error(FileNotFoundError(2, "No such file or directory", "in.xyz"))
    assert isinstance(err, FileNotFoundError) and isinstance(err, OSError)
    assert (err.errno, err.strerror, err.filename) == (2, "No such file or directory", "in.xyz")
    assert type(err).__name__ == "RemoteFileNotFoundError"  # copying never changes the class


def test_exception_with_its_own_constructor_arguments_keeps_the_combined_class():
    err = _error(CodeChangedError(["mod:f"]))  # takes a list, pickles via __reduce__
    assert type(err).__name__ == "RemoteCodeChangedError"
    assert isinstance(err, RemoteJobError) and err.changed == ["mod:f"]


def test_user_defined_exception_keeps_its_attributes_and_pickles():
    err = _error(UserDefinedError(17, "bad input"))
    assert isinstance(err, UserDefinedError) and err.code == 17
    assert err.args == (17, "bad input") and err.job_id == "j1"
    back = pickle.loads(pickle.dumps(err))  # errors cross process boundaries
    assert type(back) is type(err) and back.code == 17 and back.job_id == "j1"


def test_class_that_refuses_subclasses_comes_back_as_plain_remote_job_error():
    assert remote_error_class(FinalError) is None
    err = _error(FinalError("final"))
    assert type(err) is RemoteJobError
    assert isinstance(err.remote_exception, FinalError)
    assert "FinalError('final')" in str(err)


@pytest.mark.parametrize("exc", [KeyboardInterrupt("stop"), SystemExit(3)])
def test_process_stopping_exceptions_are_not_raised_as_themselves(exc):
    # a job's KeyboardInterrupt must not look like Ctrl-C in the driver
    err = _error(exc)
    assert type(err) is RemoteJobError and isinstance(err, Exception)
    assert not isinstance(err, type(exc)) and err.remote_exception is exc


def test_without_the_exception_object_the_error_is_plain_or_died():
    unpicklable = RemoteJobError(
        job_id="j", job_name="n", stage_dir="/x", remote_exception_repr="Gone('x')"
    )
    assert type(unpicklable) is RemoteJobError
    died = RemoteJobError(job_id="j", job_name="n", stage_dir="/x", queue_state="timeout")
    assert type(died) is JobDiedError


@pytest.mark.parametrize(
    "kind, caught_as, check",
    [
        ("value", ValueError, lambda e: e.args == ("value",)),
        ("user", UserDefinedError, lambda e: e.code == 17),
        ("missing_file", FileNotFoundError, lambda e: e.errno == 2),
        ("final", RemoteJobError, lambda e: isinstance(e.remote_exception, FinalError)),
        ("keyboard", RemoteJobError, lambda e: isinstance(e.remote_exception, KeyboardInterrupt)),
    ],
)
def test_job_exceptions_through_the_local_queue(project, kind, caught_as, check):
    job = ExPyRe(f"raise_{kind}", function=raise_exception, args=[kind])
    job.start(ONE_CORE, partial_node=True)
    try:
        job.get_results(timeout=300)
    except caught_as as err:  # what a 0.1.6 script writes
        assert isinstance(err, RemoteJobError) and err.job_id == job.id
        assert "raise_exception" in err.remote_traceback
        assert check(err)
    else:
        pytest.fail(f"job raising {kind} returned a result")
    assert job.status == "failed"
