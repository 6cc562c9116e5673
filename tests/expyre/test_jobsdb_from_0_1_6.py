"""A project whose jobs.db was written by expyre-wfl 0.1.6 keeps working.

0.1.6's jobs table has other columns (``from_dir``, ``remote_status``, ...) and no layout
version. Opening it here must neither crash in a migration nor lose its rows: they are
kept in a table of their own and a warning says so.
"""

import sqlite3

import pytest
from expyre_testutil import square

import expyre.config
from expyre.func import ExPyRe, jobs_db

# the table exactly as expyre-wfl 0.1.6 creates it (expyre/jobsdb.py of that release)
_V016_TABLE = (
    "CREATE TABLE jobs (id TEXT, name TEXT, from_dir TEXT, status TEXT, system TEXT, "
    "remote_id TEXT, remote_status TEXT, creation_time DATE, status_time DATE)"
)


def test_jobs_db_written_by_0_1_6_is_kept_aside(project):
    with sqlite3.connect(project / "jobs.db") as conn:
        conn.execute(_V016_TABLE)
        conn.execute(
            "INSERT INTO jobs VALUES ('old_1', 'old', '/p/stage/old_1', 'succeeded', 'slurm', "
            "'77', 'done', 1700000000, 1700000100)"
        )
    with pytest.warns(UserWarning, match="expyre-wfl 0.1.6"):
        assert jobs_db().select() == []
    job = ExPyRe("sq", function=square, args=[6]).start(
        {"num_cores": 1, "max_time": "10m"}, partial_node=True
    )
    assert job.get_results(timeout=300)[0] == 36
    assert [r["id"] for r in expyre.config.db.jobs()] == [job.id]
    with sqlite3.connect(project / "jobs.db") as conn:  # nothing of 0.1.6's is lost
        kept = conn.execute("SELECT id, from_dir, remote_status FROM jobs_expyre_0_1_6").fetchall()
    assert kept == [("old_1", "/p/stage/old_1", "done")]
