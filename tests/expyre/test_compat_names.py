"""Names of expyre-wfl 0.1.6 that user scripts import: exceptions, config.init/systems, units."""

import json
import pickle

import pytest

import expyre
import expyre.config
from expyre.errors import JobDiedError, JobNotReady, RemoteJobError
from expyre.func import ExPyReJobDiedError, ExPyReTimeoutError


def _error(**kw):
    return RemoteJobError(job_id="j1", job_name="relax", stage_dir="/tmp/x", **kw)


def test_died_job_is_caught_as_expyre_job_died_error():
    died = _error(queue_state="timeout")
    assert type(died) is JobDiedError
    assert isinstance(died, ExPyReJobDiedError) and isinstance(died, RemoteJobError)
    with pytest.raises(ExPyReJobDiedError, match="died without a result"):
        raise died
    # survives pickling (it crosses process boundaries) as the same class
    assert type(pickle.loads(pickle.dumps(died))) is JobDiedError


def test_function_that_raised_is_not_a_died_job():
    raised = _error(remote_exception_repr="ValueError('bad')", queue_state="failed")
    assert type(raised) is RemoteJobError
    assert not isinstance(raised, ExPyReJobDiedError)


def test_how_a_job_ended_is_said_not_inferred():
    # a runner refusal (code changed) carries an exception text but never ran the function
    refused = _error(remote_exception_repr="CodeChangedError(...)", ended="refused")
    assert type(refused) is RemoteJobError and refused.ended == "refused"
    died = _error(ended="died", queue_state="timeout")
    assert type(died) is JobDiedError and died.ended == "died"
    assert pickle.loads(pickle.dumps(refused)).ended == "refused"
    assert _error(remote_exception_repr="ValueError()").ended == "raised"  # 0.1.6 callers
    with pytest.raises(ValueError, match="ended='killed'; use one of raised, refused, died"):
        _error(ended="killed")


def test_timeout_names():
    assert issubclass(JobNotReady, ExPyReTimeoutError)
    assert issubclass(ExPyReTimeoutError, TimeoutError)
    assert expyre.ExPyReJobDiedError is ExPyReJobDiedError


@pytest.fixture
def clean_init(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EXPYRE_ROOT", raising=False)
    monkeypatch.delenv("EXPYRE_SYS", raising=False)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    expyre.config.init("@")


def test_config_init_points_at_a_project(clean_init):
    proj = clean_init / "proj"
    proj.mkdir()
    (proj / "config.json").write_text(
        json.dumps(
            {"systems": {"tiny": {"scheduler": "slurm", "partitions": {"p": {"num_cores": 2}}}}}
        )
    )
    expyre.config.init(proj)
    assert sorted(expyre.config.systems) == ["local", "tiny"]
    assert expyre.config.local_stage_dir == proj.resolve()
    assert expyre.config.find_root() == proj.resolve()
    expyre.config.init("@")
    assert "tiny" not in expyre.config.systems


def test_config_init_bad_directory_is_clear(clean_init):
    with pytest.raises(ValueError, match="is not a directory"):
        expyre.config.init(clean_init / "missing")


def test_expyre_root_at_sign_means_search(clean_init, monkeypatch):
    (clean_init / "_expyre").mkdir()
    monkeypatch.setenv("EXPYRE_ROOT", "@")
    assert expyre.config.find_root() == (clean_init / "_expyre").resolve()


def test_units_and_resources_names():
    from expyre.resources import NoPartitionFits, Resources
    from expyre.units import mem_to_kB, time_to_HMS, time_to_sec

    assert (time_to_sec("1:30:00"), time_to_sec(None), mem_to_kB("1GB")) == (5400, None, 1024**2)
    assert time_to_HMS(3723) == "1:02:03"
    assert Resources(max_time="1h", num_nodes=1).max_time == 3600
    parts = {"p4": {"num_cores": 4, "max_time": "1h"}}
    assert Resources(max_time=60, num_cores=8, queues="p4").find_nodes(parts) == (
        "p4",
        {"num_nodes": 2, "num_cores": 8, "num_cores_per_node": 4},
    )
    with pytest.raises(RuntimeError):  # expyre-wfl 0.1.6's class for "nothing fits"
        Resources(max_time="2h", num_nodes=1).find_nodes(parts)
    assert issubclass(NoPartitionFits, ValueError)
    with pytest.raises(ValueError, match="both partitions and queues"):
        Resources(max_time=60, num_nodes=1, partitions="a", queues="b")
