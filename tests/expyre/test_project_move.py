"""A project directory can be copied or moved: the jobs database stores paths relative to
the project root, and commands in a copy never touch the original's files."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

from expyre.dbschema import SCHEMA_VERSION
from expyre.jobsdb import JobsDB

DRIVER = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from jobsmod import work
    from expyre.func import ExPyRe
    jobs = [ExPyRe(f"w{i}", function=work, args=[i], output_files=[f"out_{i}.txt"])
            for i in range(3)]
    for job in jobs:
        job.start({"num_cores": 1, "max_time": "10m"}, partial_node=True)
    results = [job.get_results(timeout=600)[0] for job in jobs]
    for job in jobs:
        job.mark_processed()
    with open("results.json", "w") as fh:
        json.dump(results, fh)
    print(json.dumps(results))
    """
)
JOBSMOD = textwrap.dedent(
    """
    def work(i):
        with open(f"out_{i}.txt", "w") as fh:
            fh.write(f"item {i}")
        return i * i
    """
)


def _make_project(tmp_path: Path) -> Path:
    proj = tmp_path / "proj"
    (proj / "_expyre").mkdir(parents=True)
    (proj / "driver.py").write_text(DRIVER)
    (proj / "jobsmod.py").write_text(JOBSMOD)
    return proj


def _env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPYRE_")}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {**env, "HOME": str(home), "EXPYRE_DIED_GRACE": "2"}


def _run(args, cwd, env):
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def _drive(proj, env):
    done = _run([sys.executable, "driver.py"], proj, env)
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


def _xpr(args, cwd, env):
    # wide enough that `ls -l` shows whole directory paths (tables fit the terminal)
    return _run([sys.executable, "-m", "expyre.cli", *args], cwd, {**env, "COLUMNS": "400"})


def _stage_dirs(proj):
    return sorted(p.name for p in (proj / "_expyre" / "stage").iterdir())


def _submissions(proj):
    rows = JobsDB(proj / "_expyre" / "jobs.db").select()
    return {r["id"]: r["n_submissions"] for r in rows}


def test_commands_in_a_copy_never_touch_the_original(tmp_path):
    env = _env(tmp_path)
    proj = _make_project(tmp_path)
    assert _drive(proj, env)[0] == [0, 1, 4]
    ids = _stage_dirs(proj)
    assert len(ids) == 3
    copy = tmp_path / "proj2"
    subprocess.run(["cp", "-a", str(proj), str(copy)], check=True)
    listing = _xpr(["ls", "-l"], copy, env).stdout
    assert str(copy / "_expyre" / "stage") in listing
    assert str(proj / "_expyre" / "stage") not in listing
    removed = _xpr(["rm", "--status", "processed", "--clean", "-y"], copy, env)
    assert "removed 3 job(s)" in removed.stdout
    assert _stage_dirs(copy) == []
    assert _stage_dirs(proj) == ids  # the original's job directories are untouched
    # and the original still reuses all its finished jobs, submitting nothing
    before = _submissions(proj)
    (proj / "results.json").unlink()
    assert _drive(proj, env)[0] == [0, 1, 4]
    assert _submissions(proj) == before == dict.fromkeys(ids, 1)
    stored = sqlite3.connect(proj / "_expyre" / "jobs.db").execute(
        "SELECT stage_dir, remote_dir, info FROM jobs"
    )
    for stage_dir, remote_dir, info in stored:
        assert stage_dir.startswith("stage/") and remote_dir == stage_dir
        assert json.loads(info)["output_dir"] == ".."


def test_moved_project_finds_its_finished_jobs_results(tmp_path):
    env = _env(tmp_path)
    proj = _make_project(tmp_path)
    assert _drive(proj, env)[0] == [0, 1, 4]
    before = _submissions(proj)

    moved = tmp_path / "proj_moved"
    shutil.move(proj, moved)
    for name in ("results.json", "out_0.txt", "out_1.txt", "out_2.txt"):
        (moved / name).unlink()
    results, stderr = _drive(moved, env)
    assert results == [0, 1, 4]
    assert "died without a result" not in stderr
    assert _submissions(moved) == before  # nothing run again
    assert (moved / "out_2.txt").read_text() == "item 2"  # output files land in the new place
    assert not proj.exists()  # nothing was written where the project used to be


def _v2_database(path: Path, rows: list[dict]) -> None:
    """A database as written before paths became relative (absolute paths, version 2)."""
    db = JobsDB(path)
    db.select()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA user_version = 2")
    for r in rows:
        conn.execute(
            "INSERT INTO jobs (id, name, key, call_digest, code_fingerprint, status, stage_dir,"
            " remote_dir, created_at, updated_at, info) VALUES (?, 'n', ?, ?, 'f', 'succeeded',"
            " ?, ?, 1, 1, ?)",
            (r["id"], r["id"], r["id"], r["stage_dir"], r["remote_dir"], json.dumps(r["info"])),
        )
    conn.close()
    db.close()


def test_migration_makes_old_absolute_paths_relative_even_after_a_move(tmp_path):
    old_root = tmp_path / "old" / "_expyre"  # where the project was when the rows were written
    root = tmp_path / "new" / "_expyre"
    root.mkdir(parents=True)
    _v2_database(
        root / "jobs.db",
        [
            {
                "id": "a",
                "stage_dir": str(old_root / "stage" / "a"),
                "remote_dir": str(old_root / "stage" / "a"),
                "info": {"output_dir": str(old_root.parent / "work")},
            },
            {
                "id": "b",
                "stage_dir": str(old_root / "stage" / "b"),
                "remote_dir": "/scratch/me/runs/b",  # on a cluster: stays absolute
                "info": {"output_dir": "/elsewhere/outside/the/project"},
            },
        ],
    )
    db = JobsDB(root / "jobs.db")
    rows = {r["id"]: r for r in db.select()}
    assert db.schema_version() == SCHEMA_VERSION
    assert rows["a"]["stage_dir"] == str(root / "stage" / "a")
    assert rows["a"]["remote_dir"] == str(root / "stage" / "a")
    assert rows["a"]["info"]["output_dir"] == str(root.parent / "work")
    assert rows["b"]["remote_dir"] == "/scratch/me/runs/b"
    assert rows["b"]["info"]["output_dir"] == "/elsewhere/outside/the/project"
    raw = dict(
        sqlite3.connect(root / "jobs.db").execute("SELECT id, stage_dir FROM jobs").fetchall()
    )
    assert raw == {"a": "stage/a", "b": "stage/b"}


def test_paths_outside_the_project_stay_absolute(tmp_path):
    root = tmp_path / "proj" / "_expyre"
    db = JobsDB(root / "jobs.db")
    row, _, _ = db.create_or_reuse(
        {
            "id": "j", "name": "n", "key": "k", "call_digest": "d", "code_fingerprint": "f",
            "stage_dir": str(root / "stage" / "j"),
            "info": {"output_dir": str(tmp_path / "other" / "place")},
        }
    )  # fmt: skip
    assert row["stage_dir"] == str(root / "stage" / "j")
    assert row["info"]["output_dir"] == str(tmp_path / "other" / "place")
    db.update("j", remote_dir=str(tmp_path / "scratch" / "j"))
    raw = sqlite3.connect(root / "jobs.db").execute("SELECT stage_dir, remote_dir, info FROM jobs")
    stage_dir, remote_dir, info = raw.fetchone()
    assert stage_dir == "stage/j"
    assert remote_dir == str(tmp_path / "scratch" / "j")
    assert json.loads(info)["output_dir"] == str(tmp_path / "other" / "place")
