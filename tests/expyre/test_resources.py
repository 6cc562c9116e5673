"""Resources and partition selection, table-driven, including rejection reasons."""

import pytest

from expyre.config import PartitionConfig
from expyre.resources import NoPartitionFits, Resources, select_partition

PARTS = {
    "short": PartitionConfig("short", num_cores=16, max_time_s=3600, max_mem_kB=64 * 1024**2),
    "std": PartitionConfig("std", num_cores=32, max_time_s=48 * 3600, max_mem_kB=180 * 1024**2),
    "bigmem": PartitionConfig("bigmem", num_cores=32, max_time_s=None, max_mem_kB=1024**3),
}

# (resources kwargs, exact_fit, partial_node) -> (partition, nodes, cores, cores/node, mem/node kB)
CASES = [
    ({"max_time": "30m", "num_nodes": 1}, True, False, ("short", 1, 16, 16, None)),
    ({"max_time": "2h", "num_nodes": 2}, True, False, ("std", 2, 64, 32, None)),
    ({"max_time": "30m", "num_cores": 32}, True, False, ("short", 2, 32, 16, None)),  # first on tie
    (
        {"max_time": "30m", "num_cores": 48},
        True,
        False,
        ("short", 3, 48, 16, None),
    ),  # 0 waste beats std
    ({"max_time": "2h", "num_cores": 40}, False, False, ("std", 2, 64, 32, None)),
    (
        {"max_time": "30m", "num_cores": 20},
        False,
        False,
        ("short", 2, 32, 16, None),
    ),  # 12 waste < 44
    ({"max_time": "30m", "num_cores": 4}, True, True, ("short", 1, 4, 4, None)),
    ({"max_time": "3d", "num_nodes": 1}, True, False, ("bigmem", 1, 32, 32, None)),
    (
        {"max_time": "1h", "num_nodes": 1, "max_mem_tot": "100GB"},
        True,
        False,
        ("std", 1, 32, 32, 100 * 1024**2),
    ),
    (
        {"max_time": "1h", "num_nodes": 2, "max_mem_tot": "300GB"},
        True,
        False,
        ("std", 2, 64, 32, 150 * 1024**2),
    ),
    (
        {"max_time": "1h", "num_nodes": 1, "max_mem_per_core": "8GB"},
        True,
        False,
        ("bigmem", 1, 32, 32, 256 * 1024**2),
    ),
    (
        {"max_time": "1h", "num_nodes": 1, "partitions": "std|bigmem"},
        True,
        False,
        ("std", 1, 32, 32, None),
    ),
    (
        {"max_time": "1h", "num_nodes": 1, "partitions": ["big.*"]},
        True,
        False,
        ("bigmem", 1, 32, 32, None),
    ),
]


@pytest.mark.parametrize(("kwargs", "exact_fit", "partial", "expected"), CASES)
def test_selection_table(kwargs, exact_fit, partial, expected):
    sel = select_partition(Resources(**kwargs), PARTS, exact_fit=exact_fit, partial_node=partial)
    assert (
        sel.partition,
        sel.num_nodes,
        sel.num_cores,
        sel.num_cores_per_node,
        sel.max_mem_kB,
    ) == expected
    assert sel.max_time_s == Resources(**kwargs).max_time_s


REJECTIONS = [
    (
        {"max_time": "30m", "num_cores": 4},
        True,
        False,
        {
            "short": "less than one node",
            "std": "less than one node",
            "bigmem": "less than one node",
        },
    ),
    (
        {"max_time": "30m", "num_cores": 40},
        True,
        False,
        {"short": "not a whole number of 16-core nodes", "std": "not a whole number of 32-core"},
    ),
    (
        {"max_time": "2h", "num_nodes": 1, "max_mem_tot": "2TB"},
        True,
        False,
        {
            "short": "exceeds the partition's 3600 s",
            "std": "per node, the partition has",
            "bigmem": "per node",
        },
    ),
    (
        {"max_time": "30m", "num_nodes": 1, "partitions": "gpu.*"},
        True,
        False,
        {"short": "does not match", "bigmem": "does not match"},
    ),
]


@pytest.mark.parametrize(("kwargs", "exact_fit", "partial", "reasons"), REJECTIONS)
def test_no_fit_lists_every_partition_and_why(kwargs, exact_fit, partial, reasons):
    with pytest.raises(NoPartitionFits) as info:
        select_partition(Resources(**kwargs), PARTS, exact_fit=exact_fit, partial_node=partial)
    text = str(info.value)
    for name, why in reasons.items():
        assert f"{name}: " in text and why in text.split(f"{name}: ")[1].split(";")[0]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_time": "1h"}, "exactly one of num_nodes and num_cores"),
        ({"max_time": "1h", "num_nodes": 1, "num_cores": 4}, "exactly one"),
        ({"max_time": "1h", "num_cores": 0}, "positive integer"),
        ({"max_time": "whenever", "num_cores": 1}, "max_time"),
        (
            {"max_time": "1h", "num_cores": 1, "max_mem_tot": "1GB", "max_mem_per_core": "1GB"},
            "at most one",
        ),
        ({"max_time": "1h", "num_cores": 1, "partitions": "("}, "not a regular expression"),
    ],
)
def test_bad_resources(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Resources(**kwargs)


def test_coerce_accepts_dict_and_rejects_unknown_keys():
    assert Resources.coerce({"max_time": 60, "num_cores": 2}) == Resources(60, num_cores=2)
    with pytest.raises(ValueError, match="allowed keys"):
        Resources.coerce({"max_time": 60, "ncores": 2})


def test_single_machine_systems_refuse_multi_node_requests():
    parts = {"local": PartitionConfig("local", num_cores=2)}
    with pytest.raises(NoPartitionFits, match="needs 32 nodes .* has 1 node.*at most 2 cores"):
        select_partition(Resources(max_time="1h", num_cores=64), parts, max_nodes=1)
    assert (
        select_partition(Resources(max_time="1h", num_cores=2), parts, max_nodes=1).num_nodes == 1
    )


def test_local_queue_refuses_before_submitting(tmp_path, monkeypatch):
    from expyre.func import ExPyRe

    monkeypatch.setenv("EXPYRE_ROOT", str(tmp_path / "_expyre"))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    job = ExPyRe("too_big", function=len, args=[[1, 2]])
    with pytest.raises(NoPartitionFits, match="node"):
        job.start({"max_time": "1h", "num_nodes": 2})
    assert job.refresh().status == "created"  # nothing was submitted
