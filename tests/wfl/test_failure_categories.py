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


def _die_first_time_on_items(atoms, marker_dir, items):
    """SIGKILL the job the first time one of ``items`` is seen (the chunk dies with it)."""
    import os
    import signal
    from pathlib import Path

    marker = Path(marker_dir) / f"seen_{atoms.info['id']}"
    if atoms.info["id"] in items and not marker.exists():
        marker.write_text("x")
        os.kill(os.getpid(), signal.SIGKILL)
    atoms.info["survived"] = True
    return atoms


def test_resubmitted_chunks_of_a_packed_run_are_packed_again_with_the_raised_request(
    local_queue, tmp_path, capsys
):
    """Chunks a policy sends back go into new allocations (not queue jobs of their own),
    asking for the raised request; a split's halves likewise. (A chunk SIGKILLed inside an
    allocation that goes on leaves no queue record of its own: it is ``unknown``.)"""
    markers = tmp_path / "markers"
    markers.mkdir()
    info = _info(
        "packed", max_allocations=2, num_inputs_per_queued_job=1,
        failure_policies={"unknown": "more_time"},
    )  # fmt: skip
    out = wfl_map(
        ConfigSet(_configs(3)), OutputSpec(), _die_first_time_on_items, args=(str(markers), [0]),
        autopara_info={"remote_info": info},
    )  # fmt: skip
    assert [at.info["id"] for at in out] == [0, 1, 2] and all(at.info["survived"] for at in out)
    err = capsys.readouterr().err
    assert "unknown; resubmitting with max_time 00:10:00 -> 00:20:00" in err
    rows = {name: {**r, "info": json.loads(r["info"])} for name, r in _rows(local_queue).items()}
    again = rows["packed_chunk_0"]
    assert again["n_submissions"] == 2 and again["status"] == "processed"
    (attempt,) = again["info"]["attempts"]
    # packed both times, into different packs; the second allocation asks for 20 minutes
    assert attempt["remote_id"].startswith("pack:") and again["remote_id"].startswith("pack:")
    assert attempt["request"]["max_time_s"] == 600
    assert again["info"]["request"]["max_time_s"] == 1200
    pack = again["info"]["pack"]
    assert pack != rows["packed_chunk_1"]["info"]["pack"]
    script = (local_queue / "packs" / pack / "_expyre_job.sh").read_text()
    assert "--deadline-in 1200" in script
    assert all(rows[f"packed_chunk_{n}"]["n_submissions"] == 1 for n in (1, 2))

    # split: the two halves of a chunk go into one new pack together
    split_info = {**info, "job_name": "halves", "num_inputs_per_queued_job": 4,
                  "failure_policies": {"unknown": "split"}}  # fmt: skip
    out = wfl_map(
        ConfigSet(_configs(4)), OutputSpec(), _die_first_time_on_items,
        args=(str(markers), [3]), autopara_info={"remote_info": split_info},
    )  # fmt: skip
    assert [at.info["id"] for at in out] == [0, 1, 2, 3]
    rows = {name: {**r, "info": json.loads(r["info"])} for name, r in _rows(local_queue).items()}
    halves = [rows["halves_chunk_0_a"], rows["halves_chunk_0_b"]]
    assert all(h["remote_id"].startswith("pack:") and h["status"] == "processed" for h in halves)
    assert halves[0]["info"]["pack"] == halves[1]["info"]["pack"]
    assert halves[0]["info"]["pack"] != rows["halves_chunk_0"]["info"]["pack"]


def _always_die(atoms):
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def test_max_attempts_bounds_the_resubmissions_and_the_remedy_says_how_to_go_on(
    local_queue, capsys
):
    info = _info("doomed", max_attempts=2)
    for bound in (2, 3):  # the remedy works: a rerun with a higher bound tries once more
        with pytest.raises(QueuedJobsFailed) as caught:
            wfl_map(
                ConfigSet(_configs(1)), OutputSpec(), _always_die,
                autopara_info={"remote_info": {**info, "max_attempts": bound}},
            )  # fmt: skip
        (row,) = _rows(local_queue).values()
        assert row["n_submissions"] == bound
        text = str(caught.value)
        assert f"not retried: submitted {bound} time(s) already (max_attempts={bound})" in text
        assert text.count("earlier attempt: job doomed_chunk_0") == bound - 1
        assert f"raise RemoteInfo max_attempts (now {bound}) and rerun" in text
        assert f"`xpr reset_status -i {row['id']}` and rerun" in text
        err = capsys.readouterr().err
        assert err.count("unknown; resubmitting unchanged") == 1
        assert f"(submission {bound} of at most {bound})" in err


def test_a_request_the_user_changed_wins_over_a_policys_earlier_raise(local_queue, tmp_path):
    markers = tmp_path / "markers"
    markers.mkdir()
    # the reset job must run again: the item store would give its item back without a job
    info = _info("grown", failure_policies={"unknown": "more_time"}, reuse_items=False)
    args = (str(markers), [0])
    wfl_map(
        ConfigSet(_configs(1)), OutputSpec(), _die_first_time_on_items, args=args,
        autopara_info={"remote_info": info},
    )  # fmt: skip
    (row,) = _rows(local_queue).values()
    assert json.loads(row["info"])["request"]["max_time_s"] == 1200  # 10 min raised to 20
    from expyre.func import jobs_db

    # the same request (written differently) keeps the raise; a changed one replaces it
    for max_time, expected in ((600, 1200), ("1h", 3600)):
        jobs_db().reset(row["id"], reason="run again")  # as `xpr reset_status` does
        again = {**info, "resources": {"num_cores": 1, "max_time": max_time}}
        wfl_map(
            ConfigSet(_configs(1)), OutputSpec(), _die_first_time_on_items, args=args,
            autopara_info={"remote_info": again},
        )  # fmt: skip
        (row,) = _rows(local_queue).values()
        assert json.loads(row["info"])["request"]["max_time_s"] == expected


def test_a_packed_chunk_reset_by_the_user_runs_again_on_rerun(local_queue):
    from click.testing import CliRunner

    from expyre.cli import cli

    # the reset job must run again: the item store would give its item back without a job
    info = _info("again", max_allocations=1, reuse_items=False)
    wfl_map(ConfigSet(_configs(1)), OutputSpec(), _identity, autopara_info={"remote_info": info})
    (row,) = _rows(local_queue).values()
    result = CliRunner().invoke(cli, ["reset_status", "-i", row["id"], "-y"])
    assert result.exit_code == 0, result.output
    out = wfl_map(
        ConfigSet(_configs(1)), OutputSpec(), _identity, autopara_info={"remote_info": info}
    )
    assert [at.info["id"] for at in out] == [0]
    (row,) = _rows(local_queue).values()
    assert row["n_submissions"] == 2 and row["status"] == "processed"
