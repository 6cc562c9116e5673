"""Per-item reuse on the embedded local queue: a rerun reuses every item already computed,
whatever the chunking; a failed or killed job costs only its items without a result.

Executions are counted inside the jobs (see ``_item_reuse_scenarios``).
"""

import json
import sqlite3

import pytest
from _item_reuse_scenarios import configs, executions, fingerprint, prepare, run

from wfl.autoparallelize.remote import FAILED_JOB_TAG, QueuedJobsFailed


@pytest.fixture
def workdir(make_local_project, tmp_path):
    make_local_project(cores=2, died_grace_s=2)
    prepare(tmp_path)
    return tmp_path


def _job_names(root):
    with sqlite3.connect(root / "jobs.db") as db:
        return sorted(r[0] for r in db.execute("SELECT name FROM jobs"))


def test_rechunked_rerun_executes_nothing_and_added_inputs_only_themselves(workdir, capsys):
    log = workdir / "executions.log"
    first = run(configs(range(12)), workdir, "local", 4)
    assert executions(log) == {i: 1 for i in range(12)}
    assert len(_job_names(workdir / "_expyre")) == 3

    again = run(configs(range(12)), workdir, "local", 3)  # another chunking
    assert executions(log) == {i: 1 for i in range(12)}, "0 items executed again"
    assert fingerprint(again) == fingerprint(first)  # bit-identical to the run that computed
    assert [at.info["id"] for at in again] == list(range(12))
    assert len(_job_names(workdir / "_expyre")) == 3  # no job was even created
    assert "12 of 12 item(s) reused from the item store; 0 to compute" in capsys.readouterr().err

    # 4 inputs added around the old ones: exactly those 4 run, results stay at their inputs
    ids = [100, 101, *range(12), 102, 103]
    grown = run(configs(ids), workdir, "local", 3)
    counts = executions(log)
    assert {i: n for i, n in counts.items() if i >= 100} == {100: 1, 101: 1, 102: 1, 103: 1}
    assert sum(counts.values()) == 16
    assert [at.info["id"] for at in grown] == ids
    assert {i: v for i, v in fingerprint(grown).items() if i < 100} == fingerprint(first)
    assert "12 of 16 item(s) reused" in capsys.readouterr().err


@pytest.mark.parametrize("pool", [0, 2], ids=["serial", "pool2"])
def test_a_failed_item_is_all_a_rerun_executes(workdir, pool):
    log = workdir / "executions.log"
    marker = workdir / "markers" / "fail_5"  # item 5 is in the second job, [4, 5, 6, 7]
    marker.write_text("x")
    with pytest.raises(QueuedJobsFailed, match="item 5 fails"):
        run(configs(range(12)), workdir, "local", 4, pool=pool)
    assert executions(log) == {i: 1 for i in range(12)}  # its job went on past it
    marker.unlink()  # the user fixes the cause

    before = executions(log)
    again = run(configs(range(12)), workdir, "local", 4, pool=pool)
    rerun = executions(log) - before
    assert rerun == {5: 1}, "only the item without a result runs again"
    assert [at.info["id"] for at in again] == list(range(12))
    assert all(at.info["done"] for at in again)


@pytest.mark.parametrize("n_per_job", [1, 2])
def test_a_skipped_item_is_retried_even_when_its_job_is_formed_again(workdir, n_per_job):
    """An item the operation returned None for has no stored result; when the rerun forms
    the very same job for it (same items, same key), that finished job must run again,
    or the item would never be retried."""
    log = workdir / "executions.log"
    marker = workdir / "markers" / "skip_2"
    marker.write_text("x")
    first = run(configs(range(4)), workdir, "local", n_per_job)
    assert sorted(at.info["id"] for at in first) == [0, 1, 3]
    marker.unlink()

    before = executions(log)
    again = run(configs(range(4)), workdir, "local", n_per_job)
    assert executions(log) - before == {2: 1}, "only the skipped item runs again"
    assert [at.info["id"] for at in again] == [0, 1, 2, 3]


def test_ignored_failure_tags_only_the_item_without_result(workdir):
    (workdir / "markers" / "fail_5").write_text("x")
    first = run(configs(range(8)), workdir, "local", 4, ignore_failed_jobs=True)
    assert [bool(at.info.get(FAILED_JOB_TAG)) for at in first] == [0, 0, 0, 0, 0, 1, 0, 0]
    assert all(at.info.get("done") for at in first if at.info["id"] != 5)
    (workdir / "markers" / "fail_5").unlink()
    before = executions(workdir / "executions.log")
    second = run(configs(range(8)), workdir, "local", 4, ignore_failed_jobs=True)
    assert executions(workdir / "executions.log") - before == {5: 1}
    assert not any(at.info.get(FAILED_JOB_TAG) for at in second)


def test_a_killed_job_resubmitted_by_its_policy_resumes_from_its_saved_items(workdir):
    log = workdir / "executions.log"
    (workdir / "markers" / "kill_6").write_text("x")  # the job of [4..7] dies at item 6
    results = run(configs(range(8)), workdir, "local", 4)
    assert [at.info["id"] for at in results] == list(range(8))
    # 4 and 5 were saved before the kill: the resubmitted job ran only 6 (again) and 7
    assert executions(log) == {0: 1, 1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 2, 7: 1}
    with sqlite3.connect(workdir / "_expyre" / "jobs.db") as db:
        submissions = dict(db.execute("SELECT name, n_submissions FROM jobs"))
    assert submissions == {"items_chunk_0": 1, "items_chunk_1": 2}


def test_reuse_items_false_neither_looks_up_nor_stores(workdir):
    log = workdir / "executions.log"
    run(configs(range(4)), workdir, "local", 2, reuse_items=False)
    run(configs(range(4)), workdir, "local", 4, reuse_items=False)
    assert executions(log) == {i: 2 for i in range(4)}
    assert not (workdir / "_expyre" / "items.db").exists() or _n_items(workdir) == 0


def _n_items(workdir):
    with sqlite3.connect(workdir / "_expyre" / "items.db") as db:
        return db.execute("SELECT COUNT(*) FROM items").fetchone()[0]


def test_runs_are_recorded_with_their_counts(workdir):
    run(configs(range(6)), workdir, "local", 3)
    run(configs(range(8)), workdir, "local", 4)
    with sqlite3.connect(workdir / "_expyre" / "items.db") as db:
        rows = db.execute("SELECT n_items, n_reused, n_new FROM runs ORDER BY at").fetchall()
    assert rows == [(6, 0, 6), (8, 6, 2)]
    assert json.dumps(rows)  # plain numbers, ready for `xpr items --json`


def test_driver_killed_mid_gather_then_rerun_in_another_chunking(workdir):
    from _item_reuse_scenarios import kill_driver_mid_gather_then_rerun

    root = workdir / "_expyre"
    killed_at, out, err = kill_driver_mid_gather_then_rerun(workdir, root, "local", slow_s=2.0)
    assert killed_at is not None, "the driver finished before it could be killed"
    assert "DRIVER DONE 12" in out, err
    # 0 items executed twice (the rerun waited for the first run's jobs), 0 lost
    assert executions(workdir / "executions.log") == {i: 1 for i in range(12)}
    assert len(_job_names(root)) == 3  # the 3-per-job rerun created no job
    # the first run's items: stored, read from its finished jobs, or waited for
    assert "of 12 item(s) reused from the item store" in err
    assert "; 0 to compute in 0 job(s)" in err


def test_two_drivers_at_once_in_other_chunkings_execute_each_item_once(workdir):
    from _item_reuse_scenarios import two_drivers_at_once

    # each driver pauses between its lookup and its claims: without the planning lock both
    # would look before either claimed, and both would compute every item
    outcomes = two_drivers_at_once(workdir, "local", lookup_delay_s=3.0)
    for out, err in outcomes:
        assert "DRIVER DONE 12" in out, err
    assert executions(workdir / "executions.log") == {i: 1 for i in range(12)}
    # the driver that looked second waited for the first one's jobs, creating none
    errs = [err for _, err in outcomes]
    assert sum("from jobs of an earlier run still queued" in err for err in errs) == 1, errs
    assert len(_job_names(workdir / "_expyre")) in (3, 4)  # one driver's chunking only
