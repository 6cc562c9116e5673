"""Failure categories and policies end to end on the embedded local queue (real jobs).

A Python exception in one item is reported (category ``exception``, the item's input
location named, never resubmitted); a job whose python cannot start is ``bad_environment``,
reported once with the fix and never retried, not even by a rerun of the script.
"""

import json
import sqlite3
import sys

import cloudpickle
import pytest
from ase.build import bulk

from wfl.autoparallelize.remote import QueuedJobsFailed
from wfl.configset import ConfigSet, OutputSpec
from wfl.map import map as wfl_map

cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture
def local_queue(make_local_project):
    return make_local_project(cores=2)


def _info(job_name, **extra):
    return {
        "sys_name": "local",
        "job_name": job_name,
        "resources": {"num_cores": 1, "max_time": "10m"},
        "partial_node": True,
        "num_inputs_per_queued_job": 1,
        "env_vars": ["WFL_NUM_PYTHON_SUBPROCESSES=0"],
        "check_interval": 0.3,
        "timeout": 600,
        **extra,
    }


def _rows(root):
    with sqlite3.connect(root / "jobs.db") as db:
        db.row_factory = sqlite3.Row
        return {r["name"]: dict(r) for r in db.execute("SELECT * FROM jobs")}


def _configs(n):
    out = []
    for i in range(n):
        at = bulk("Cu", cubic=True)
        at.info["id"] = i
        out.append(at)
    return out


def _fail_on_item_2(atoms):
    if atoms.info["id"] == 2:
        raise ValueError("this structure is broken")
    return atoms


def test_exception_in_one_item_is_reported_with_its_location_and_not_resubmitted(
    local_queue, capsys
):
    with pytest.raises(QueuedJobsFailed) as caught:
        wfl_map(
            ConfigSet(_configs(4)), OutputSpec(), _fail_on_item_2,
            autopara_info={"remote_info": _info("exc")},
        )  # fmt: skip
    text = str(caught.value)
    assert text.startswith("1 of 4 queued job(s) failed (exception)")
    assert "category: exception" in text
    assert "ValueError('this structure is broken')" in text
    # the item's input location, from the job's own traceback and from the driver
    assert "raised for the input item(s) at location(s) ' / 2'" in text
    assert "input items:  / 2" in text
    assert "remedy: fix the code or the input item" in text
    rows = _rows(local_queue)
    assert rows["exc_chunk_2"]["failure_category"] == "exception"
    assert json.loads(rows["exc_chunk_2"]["info"])["failure"]["exception_type"] == "ValueError"
    assert all(r["n_submissions"] == 1 for r in rows.values())
    assert "resubmitting" not in capsys.readouterr().err


def _identity(atoms):
    return atoms


def test_python_that_cannot_start_is_bad_environment_reported_once_never_retried(local_queue):
    # the job's python cannot start: its standard library is not where PYTHONHOME says
    info = _info("badenv", pre_cmds=["export PYTHONHOME=/nonexistent/python/home"])
    for _ in range(2):  # a rerun of the script reports it again, without resubmitting
        with pytest.raises(QueuedJobsFailed) as caught:
            wfl_map(
                ConfigSet(_configs(1)), OutputSpec(), _identity,
                autopara_info={"remote_info": info},
            )  # fmt: skip
        text = str(caught.value)
        assert text.startswith("1 of 1 queued job(s) failed (bad_environment)")
        assert "the job's python could not start the runner" in text
        assert "remedy: fix the job's environment (the system's python_cmd and commands" in text
        (row,) = _rows(local_queue).values()
        assert row["failure_category"] == "bad_environment"
        assert row["n_submissions"] == 1


def _die_first_time_on_item_0(atoms, marker_dir):
    """SIGKILL the job the first time item 0 is seen: the whole chunk dies with it."""
    import os
    import signal
    from pathlib import Path

    marker = Path(marker_dir) / "seen_0"
    if atoms.info["id"] == 0 and not marker.exists():
        marker.write_text("x")
        os.kill(os.getpid(), signal.SIGKILL)
    atoms.info["survived"] = True
    return atoms


def test_split_policy_runs_a_chunk_as_two_halves_in_order(local_queue, tmp_path, capsys):
    configs = _configs(4)
    markers = tmp_path / "markers"
    markers.mkdir()
    info = _info("whole", num_inputs_per_queued_job=4, failure_policies={"unknown": "split"})
    out = wfl_map(
        ConfigSet(configs), OutputSpec(), _die_first_time_on_item_0, args=(str(markers),),
        autopara_info={"remote_info": info},
    )  # fmt: skip
    assert [at.info["id"] for at in out] == [0, 1, 2, 3]
    assert all(at.info["survived"] for at in out)
    assert "unknown; splitting its 4 items into two jobs of 2 and 2" in capsys.readouterr().err
    rows = _rows(local_queue)
    assert sorted(rows) == ["whole_chunk_0", "whole_chunk_0_a", "whole_chunk_0_b"]
    assert rows["whole_chunk_0"]["status"] == "died"
    assert rows["whole_chunk_0_a"]["status"] == rows["whole_chunk_0_b"]["status"] == "processed"
    # a rerun reuses the halves: nothing is submitted again
    again = wfl_map(
        ConfigSet(configs), OutputSpec(), _die_first_time_on_item_0, args=(str(markers),),
        autopara_info={"remote_info": info},
    )  # fmt: skip
    assert [at.info["id"] for at in again] == [0, 1, 2, 3]
    assert {n: r["n_submissions"] for n, r in _rows(local_queue).items()} == {
        "whole_chunk_0": 1, "whole_chunk_0_a": 1, "whole_chunk_0_b": 1,
    }  # fmt: skip
