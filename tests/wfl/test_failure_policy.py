"""Failure policies decided per category (pure: no queue, no jobs database)."""

import pytest

from expyre.config import PartitionConfig
from wfl.autoparallelize.failure_policy import (
    DEFAULT_POLICIES,
    MAX_SUBMISSIONS_PER_JOB,
    check_failure_policies,
    decide,
    effective_policies,
    remedy,
)
from wfl.autoparallelize.remoteinfo import RemoteInfo

# like the CI Slurm: a 1-hour "debug" partition listed first, an unlimited "standard" one
PARTS = {
    "debug": PartitionConfig("debug", num_cores=2, max_time_s=3600, max_mem_kB=4 * 1024**2),
    "standard": PartitionConfig("standard", num_cores=2, max_time_s=None, max_mem_kB=8 * 1024**2),
}


def _decide(category, resources, submissions=1, items=4, policies=None, partitions=PARTS, **extra):
    return decide(
        category=category,
        policies=effective_policies(policies, False),
        resources=resources,
        partitions=partitions,
        submissions=submissions,
        num_items=items,
        job_label="job x",
        partial_node=True,
        **extra,
    )


def test_defaults_rerun_what_the_machine_killed_and_report_the_rest():
    assert DEFAULT_POLICIES == {
        "timeout": "more_time",
        "out_of_memory": "more_memory",
        "node_failure": "resubmit",
        "cancelled": "fail",
        "exception": "fail",
        "bad_environment": "fail",
        "unknown": "resubmit",
    }
    # resubmit_killed_jobs=True keeps its meaning: cancelled jobs run again too
    assert effective_policies(None, True)["cancelled"] == "resubmit"
    assert effective_policies({"cancelled": "fail"}, True)["cancelled"] == "fail"


def test_more_time_doubles_then_moves_to_a_partition_allowing_more():
    d = _decide("timeout", {"num_cores": 1, "max_time": "20m", "partitions": ["debug"]})
    assert d.action == "more_time" and d.resources["max_time"] == 2400
    assert "max_time 00:20:00 -> 00:40:00" in d.message
    # 40 min -> 80 min exceeds debug's hour: partition selection moves the job to standard
    d = _decide("timeout", {"num_cores": 1, "max_time": "40m"})
    assert d.resources["max_time"] == 4800 and "partition debug -> standard" in d.message


def test_more_time_is_capped_by_the_partitions_max_time():
    d = _decide("timeout", {"num_cores": 1, "max_time": "40m", "partitions": ["debug"]})
    assert d.action == "more_time" and d.resources["max_time"] == 3600
    assert "capped by the partition's max_time" in d.message
    d = _decide("timeout", {"num_cores": 1, "max_time": "1h", "partitions": ["debug"]})
    assert d.action == "fail" and "already the longest" in d.message


def test_more_memory_then_split_when_memory_cannot_grow():
    d = _decide("out_of_memory", {"num_cores": 1, "max_time": "10m", "max_mem_tot": "3GB"})
    assert d.action == "more_memory" and d.resources["max_mem_tot"] == 6 * 1024**2
    assert "memory 3072 MB -> 6144 MB" in d.message and "partition debug -> standard" in d.message
    d = _decide("out_of_memory", {"num_cores": 1, "max_time": "10m", "max_mem_tot": "6GB"})
    assert d.resources["max_mem_tot"] == 8 * 1024**2 and "capped" in d.message
    d = _decide("out_of_memory", {"num_cores": 1, "max_time": "10m", "max_mem_tot": "8GB"})
    assert d.action == "split" and "splitting its 4 items" in d.message
    d = _decide("out_of_memory", {"num_cores": 1, "max_time": "10m", "max_mem_tot": "8GB"}, items=1)
    assert d.action == "fail"


def test_no_memory_request_grows_from_the_partitions_memory():
    d = _decide("out_of_memory", {"num_cores": 1, "max_time": "10m"})
    assert d.action == "more_memory" and d.resources["max_mem_tot"] == 8 * 1024**2
    bare = {"p": PartitionConfig("p", num_cores=2)}
    d = _decide("out_of_memory", {"num_cores": 1, "max_time": "10m"}, items=1, partitions=bare)
    assert d.action == "fail" and "no request to raise" in d.message


def test_attempts_are_bounded_and_failures_are_not_retried():
    res = {"num_cores": 1, "max_time": "10m"}
    assert _decide("node_failure", res, submissions=1).action == "resubmit"
    d = _decide("node_failure", res, submissions=MAX_SUBMISSIONS_PER_JOB)
    assert d.action == "fail" and f"max_attempts={MAX_SUBMISSIONS_PER_JOB}" in d.message
    for category in ("exception", "bad_environment", "cancelled"):
        assert _decide(category, res).action == "fail"
    assert _decide("cancelled", res, policies={"cancelled": "resubmit"}).action == "resubmit"
    assert _decide("exception", res, policies={"exception": "split"}).action == "split"


def test_every_category_has_a_remedy():
    assert "max_time" in remedy("timeout")
    assert "xpr reset_status" in remedy("bad_environment")
    assert "python_cmd" in remedy("bad_environment")
    assert remedy("no such") == remedy("unknown")


def test_bad_policies_name_the_key_and_the_choices():
    with pytest.raises(
        ValueError, match=r"'time_out' is not a failure category; use one of timeout"
    ):
        check_failure_policies({"time_out": "more_time"})
    with pytest.raises(ValueError, match=r"\['timeout'\] = 'retry' is not an action; use one of"):
        RemoteInfo(
            None, "j", {"num_cores": 1, "max_time": 60}, failure_policies={"timeout": "retry"}
        )
    info = RemoteInfo.from_value(
        {"job_name": "j", "resources": {"num_cores": 1, "max_time": 60},
         "failure_policies": {"timeout": "split"}}
    )  # fmt: skip
    assert info.failure_policies == {"timeout": "split"}
    assert RemoteInfo.from_value(info.as_dict()) == info


def test_the_attempt_bound_is_configurable_and_validated():
    res = {"num_cores": 1, "max_time": "10m"}
    d = _decide("node_failure", res, submissions=3, max_attempts=5)
    assert d.action == "resubmit" and "(submission 4 of at most 5)" in d.message
    d = _decide("timeout", res, submissions=1, max_attempts=1)
    assert d.action == "fail" and "max_attempts=1" in d.message
    base = {"job_name": "j", "resources": res}
    assert RemoteInfo.from_value(base).max_attempts == MAX_SUBMISSIONS_PER_JOB == 3
    assert RemoteInfo.from_value({**base, "max_attempts": 6}).max_attempts == 6
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match=r"max_attempts must be a whole number >= 1") as e:
            RemoteInfo.from_value({**base, "max_attempts": bad}, "WFL_EXPYRE_INFO")
        assert f"got {bad!r}" in str(e.value) and str(e.value).startswith("WFL_EXPYRE_INFO:")
