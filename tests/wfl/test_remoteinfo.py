"""RemoteInfo validation: every bad argument is a clear error naming the field."""

import pytest

from wfl.autoparallelize.remoteinfo import RemoteInfo

GOOD = {"sys_name": "local", "job_name": "j", "resources": {"num_nodes": 1, "max_time": "24h"}}


def test_defaults_and_chunk_sizes():
    ri = RemoteInfo(**GOOD)
    assert ri.num_inputs_per_queued_job == -100
    assert ri.check_interval is None  # adaptive polling by default
    assert (
        ri.timeout is None
    )  # wait as long as the jobs live: max_time "24h" must not give up at 1 h
    assert RemoteInfo(**GOOD, timeout=60).timeout == 60
    assert RemoteInfo(**GOOD, num_inputs_per_queued_job=5).chunk_size(3) == 5
    assert RemoteInfo(**GOOD, num_inputs_per_queued_job=-2).chunk_size(3) == 6


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("num_inputs_per_queued_job", 0, "non-zero integer"),
        ("num_inputs_per_queued_job", 1.5, "non-zero integer"),
        ("env_vars", "A=1", "single string"),
        ("env_vars", ["1A=2"], "valid shell variable name"),
        ("input_files", [3], "must be strings"),
        ("timeout", -1, "positive number of seconds"),
        ("exact_fit", "yes", "true or false"),
        ("job_name", "", "non-empty string"),
        ("resources", {"num_nodes": 1, "max_time": "forever"}, "forever"),
    ],
)
def test_bad_values_are_named(field, value, message):
    with pytest.raises(ValueError, match=message):
        RemoteInfo(**dict(GOOD, **{field: value}))


def test_from_dict_does_not_mutate_and_rejects_unknown_keys():
    d = dict(GOOD, env_vars=["A=1"])
    ri = RemoteInfo.from_value(d)
    ri.env_vars.append("B=2")
    assert d["env_vars"] == ["A=1"]
    with pytest.raises(ValueError, match="unknown RemoteInfo key"):
        RemoteInfo.from_value(dict(GOOD, resourcez={}))
    assert RemoteInfo.from_value(GOOD).updated({"timeout": "2h"}).timeout == 7200
