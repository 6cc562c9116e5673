"""``xpr items``: what the item store holds and what runs reused; dropping items; ``xpr rm``
drops the items of the stale jobs it removes and keeps the others."""

import json
import time

from click.testing import CliRunner

from expyre.cli import cli
from expyre.itemstore import ITEMS_DB_NAME, ItemStore, StoredItem
from expyre.jobsdb import JobsDB


def _xpr(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def _store(root):
    return ItemStore(root / ITEMS_DB_NAME)


def _fill(root):
    store = _store(root)
    store.put(
        [StoredItem(f"r{i}", "mine:relax", "a", "c1", b"x" * 100, "job_r") for i in range(3)]
        + [StoredItem("m0", "wfl.map:map", "a", "c1", b"y", "job_m")]
    )
    store.claim("job_r", ["r0", "r1", "r2"])
    store.record_run("mine:relax", "relax", 5, 3, 0, 2)
    return store


def test_items_shows_stored_items_and_runs(project):
    _fill(project)
    result = _xpr("items")
    assert result.exit_code == 0, result.output
    assert "4 stored item(s)" in result.output
    assert "mine:relax" in result.output and "wfl.map:map" in result.output
    assert "relax" in result.output and "REUSED" in result.output
    data = json.loads(_xpr("items", "--json").output)
    assert sorted(r["n_items"] for r in data["stored"]) == [1, 3]
    assert data["runs"][0]["n_reused"] == 3 and data["runs"][0]["n_new"] == 2


def test_items_of_an_empty_project(project):
    result = _xpr("items")
    assert result.exit_code == 0 and "no stored items" in result.output
    assert not (project / ITEMS_DB_NAME).exists()


def test_items_rm_by_operation_and_age(project):
    store = _fill(project)
    assert "would drop 3" in _xpr("items", "rm", "-o", "relax", "--dry-run").output
    assert len(store.lookup(["r0", "r1", "r2"])) == 3
    result = _xpr("items", "rm", "-o", "relax", input="n\n")
    assert result.exit_code == 1 and "nothing dropped" in result.output
    assert "no stored items match" in _xpr("items", "rm", "--older-than", "1d", "-y").output
    assert "dropped 3 stored item(s)" in _xpr("items", "rm", "-o", "relax", "-y").output
    assert store.lookup(["r0", "m0"]) == {"m0": b"y"}
    time.sleep(1.1)
    assert "dropped 1" in _xpr("items", "rm", "--older-than", "1", "-y").output


def test_items_rm_needs_a_filter_and_checks_it(project):
    assert "give -o/--operation" in _xpr("items", "rm", "-y").output
    assert "is not a regular expression" in _xpr("items", "rm", "-o", "(", "-y").output
    assert "--older-than" in _xpr("items", "rm", "--older-than", "soon", "-y").output


def _job(db, job_id, status):
    now = time.time()
    db.create_or_reuse(
        {"id": job_id, "name": job_id, "key": job_id, "call_digest": job_id,
         "code_fingerprint": "f", "stage_dir": str(db.root / "stage" / job_id),
         "status": status, "created_at": now, "updated_at": now}
    )  # fmt: skip


def test_xpr_rm_drops_items_of_stale_jobs_and_keeps_the_others(project):
    store = _store(project)
    store.put([StoredItem("old", "m:op", "a", "c-old", b"1", "job_stale"),
               StoredItem("ok", "m:op", "a", "c-new", b"2", "job_done")])  # fmt: skip
    store.claim("job_stale", ["old"])
    store.claim("job_done", ["ok"])
    db = JobsDB(project / "jobs.db")
    _job(db, "job_stale", "stale")
    _job(db, "job_done", "processed")
    result = _xpr("rm", "-s", "stale,processed", "-y")
    assert result.exit_code == 0, result.output
    assert "dropped 1 stored item(s) of stale jobs" in result.output
    assert store.lookup(["old", "ok"]) == {"ok": b"2"}  # items outlive their (good) jobs
    assert store.claiming_jobs(["ok"]) == {}  # but the removed job is no longer asked
