"""A queued operation's failure is caught by the exception classes its jobs raised.

In wfl 0.3.5 an operation run as queued jobs re-raised the first remote exception, so
scripts wrap it in ``except ValueError:`` (or their own exception class). Here the
operation raises ``QueuedJobsFailed`` listing every failed job, and that error is also
an instance of each remote exception's class (``ExPyReJobDiedError`` for died jobs).
"""

import pickle
import sys

import cloudpickle
import pytest
from _wfl_testdata import perturbed_cu_cells

from expyre.errors import ExPyReJobDiedError, RemoteJobError
from wfl.autoparallelize.remote import JobFailure, QueuedJobsFailed
from wfl.configset import ConfigSet, OutputSpec
from wfl.map import map as wfl_map

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # jobs cannot import tests


class ConfigRejected(Exception):
    """A user's own exception class, with an attribute."""

    def __init__(self, config_id):
        super().__init__(f"config {config_id} rejected")
        self.config_id = config_id


def _failure(exc=None, died=False):
    fields = {"job_id": "j", "job_name": "n", "stage_dir": "/x"}
    if died:
        error = RemoteJobError(**fields, queue_state="timeout")
    else:
        error = RemoteJobError(**fields, remote_exception_repr=repr(exc), remote_exception=exc)
    return JobFailure("n", "j", "/x", error)


def test_every_failure_class_catches_it_and_the_report_stays():
    err = QueuedJobsFailed([_failure(ValueError("a")), _failure(KeyError("k"))], total=3)
    assert isinstance(err, ValueError) and isinstance(err, KeyError)
    assert isinstance(err, RuntimeError) and isinstance(err, QueuedJobsFailed)
    assert str(err).startswith("2 of 3 queued job(s) failed") and len(err.failures) == 2


def test_oserror_attributes_and_report():
    err = QueuedJobsFailed([_failure(FileNotFoundError(2, "No such file", "in.xyz"))], 1)
    assert isinstance(err, FileNotFoundError) and err.filename == "in.xyz"
    assert str(err).startswith("1 of 1 queued job(s) failed")  # not OSError's own text


def test_died_job_is_an_expyre_job_died_error():
    err = QueuedJobsFailed([_failure(died=True)], 1)
    assert isinstance(err, ExPyReJobDiedError)


def test_process_stopping_exceptions_are_not_added():
    err = QueuedJobsFailed([_failure(KeyboardInterrupt())], 1)
    assert type(err) is QueuedJobsFailed and not isinstance(err, KeyboardInterrupt)


def _reject(atoms, bad_ids):
    if atoms.info["id"] in bad_ids:
        raise ConfigRejected(atoms.info["id"])
    return atoms


def test_user_exception_from_queued_operation_is_caught_by_its_class(make_local_project):
    make_local_project(cores=2)
    remote_info = {
        "sys_name": "local",
        "job_name": "reject",
        "resources": {"num_cores": 1, "max_time": "10m"},
        "partial_node": True,
        "num_inputs_per_queued_job": 2,
        "env_vars": ["WFL_NUM_PYTHON_SUBPROCESSES=0"],
        "check_interval": 0.5,
        "timeout": 600,
    }
    configs = perturbed_cu_cells(4)
    try:  # what a wfl 0.3.5 script writes
        wfl_map(
            ConfigSet(configs), OutputSpec(), _reject, args=({2},),
            autopara_info={"remote_info": remote_info},
        )  # fmt: skip
    except ConfigRejected as err:
        assert err.config_id == configs[2].info["id"]
        assert isinstance(err, QueuedJobsFailed) and len(err.failures) == 1
        assert "config" in str(err) and "rejected" in str(err)
    else:
        pytest.fail("the operation's failure was not raised")


def test_it_survives_pickling_with_its_classes_and_report():
    """It crosses process boundaries (a pool's worker, a job that runs an operation)."""
    err = QueuedJobsFailed([_failure(ValueError("a")), _failure(died=True)], total=3)
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, ValueError) and isinstance(back, ExPyReJobDiedError)
    assert str(back) == str(err) and back.total == 3 and len(back.failures) == 2
