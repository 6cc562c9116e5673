"""A project directory can be copied or moved: the jobs database stores paths relative to
the project root, and commands in a copy never touch the original's files."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
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


PACKED_DRIVER = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from jobsmod import work
    from expyre.func import ExPyRe
    from expyre.packing import start_packed
    from expyre.poll import wait_for_jobs
    jobs = [ExPyRe(f"w{i}", function=work, args=[i]) for i in range(3)]
    if sys.argv[1] == "submit":
        start_packed(jobs, {"num_cores": 1, "max_time": "10m"}, max_allocations=1,
                     partial_node=True)
        sys.exit(0)
    list(wait_for_jobs(jobs, timeout=600))
    print(json.dumps([job.get_results(timeout=0)[0] for job in jobs]))
    print(json.dumps({job.id: job.status for job in jobs}), file=sys.stderr)
    """
)


def test_moved_project_finds_results_of_packed_jobs_in_a_local_rundir(tmp_path):
    """Chunks run in a run directory inside the project (config.json ``rundir: "runs"``),
    packed into one allocation; the driver leaves before collecting them, the project is
    moved, and the rerun finds every result where the project is now."""
    env = _env(tmp_path)
    proj = _make_project(tmp_path)
    (proj / "driver.py").write_text(PACKED_DRIVER)
    system = {"host": None, "scheduler": "local", "rundir": "runs"}
    system["partitions"] = {"p": {"num_cores": 2}}
    (proj / "_expyre" / "config.json").write_text(json.dumps({"systems": {"loc": system}}))
    _run([sys.executable, "driver.py", "submit"], proj, env)
    rows = JobsDB(proj / "_expyre" / "jobs.db").select()
    assert {r["status"] for r in rows} == {"submitted"}
    for r in rows:
        # stored relative to the root: the run directory moves with the project
        assert r["remote_dir"].startswith(str(proj / "_expyre" / "runs")) and r["remote_id"]
    done = [Path(r["remote_dir"], "_expyre_done") for r in rows]
    deadline = time.monotonic() + 300
    while not all(p.exists() for p in done) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(p.exists() for p in done)
    JobsDB(proj / "_expyre" / "jobs.db").close()

    # a copy removing everything it has deletes its own run directories, not the original's
    copy = tmp_path / "proj_copy"
    subprocess.run(["cp", "-a", str(proj), str(copy)], check=True)
    removed = _xpr(["rm", "-s", "*", "-c", "--cancel", "-y"], copy, env)
    assert "removed 3 job(s)" in removed.stdout
    assert not any((copy / "_expyre" / "runs").glob("*/w*"))
    assert all(p.exists() for p in done)

    moved = tmp_path / "proj_moved"
    shutil.move(proj, moved)
    done = _run([sys.executable, "driver.py", "collect"], moved, env)
    assert json.loads(done.stdout.splitlines()[-1]) == [0, 1, 4]
    assert "died" not in done.stderr
    assert not proj.exists()
    raw = sqlite3.connect(moved / "_expyre" / "jobs.db").execute("SELECT remote_dir FROM jobs")
    assert all(d.startswith("runs/") for (d,) in raw)
    tasks = next((moved / "_expyre" / "packs").iterdir()) / "tasks"
    assert all(not line.startswith("/") for line in tasks.read_text().splitlines())


STAGE_ONLY_DRIVER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from jobsmod import work
    from expyre.func import ExPyRe
    job = ExPyRe("w", function=work, args=[5])
    if sys.argv[1] == "run":
        job.start({"num_cores": 1, "max_time": "10m"}, partial_node=True)
        print(job.get_results(timeout=600)[0])
    """
)


def test_a_job_staged_before_a_move_or_copy_imports_the_project_it_runs_in(tmp_path):
    """The driver's import path was recorded absolute: a job staged before ``mv`` could not
    import the project's module any more, and one staged before ``cp`` imported the
    ORIGINAL's module (here edited, so the copy's job refused to run: code changed)."""
    env = _env(tmp_path)
    proj = _make_project(tmp_path)
    (proj / "driver.py").write_text(STAGE_ONLY_DRIVER)
    _run([sys.executable, "driver.py", "stage"], proj, env)  # staged, never submitted
    meta = json.loads(next((proj / "_expyre" / "stage").iterdir()).joinpath(
        "_expyre_meta.json").read_text())  # fmt: skip
    assert str(proj) not in json.dumps(meta)  # no absolute path of the project in it
    assert "." in meta["sys_path_in_project"]
    assert not any(p.startswith(sys.prefix) for p in meta["sys_path"])  # interpreter's own

    copy = tmp_path / "proj_copy"
    subprocess.run(["cp", "-a", str(proj), str(copy)], check=True)
    (proj / "jobsmod.py").write_text("def work(i):\n    raise RuntimeError('edited original')\n")
    assert _run([sys.executable, "driver.py", "run"], copy, env).stdout.split()[-1] == "25"

    moved = tmp_path / "proj_moved"
    (proj / "jobsmod.py").write_text(JOBSMOD)
    shutil.move(proj, moved)
    assert _run([sys.executable, "driver.py", "run"], moved, env).stdout.split()[-1] == "25"


LIVE_DRIVER = textwrap.dedent(
    """
    import os, sys, time
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from expyre.func import ExPyRe
    def nap(seconds):
        time.sleep(seconds)
        return "slept"
    job = ExPyRe("nap", function=nap, args=[float(sys.argv[2])])
    job.start({"num_cores": 1, "max_time": "10m"}, partial_node=True)
    if sys.argv[1] == "wait":
        print(job.get_results(timeout=600)[0])
    """
)


def test_a_copy_made_while_jobs_run_runs_them_itself_and_never_cancels_the_originals(tmp_path):
    env = _env(tmp_path)
    proj = _make_project(tmp_path)
    (proj / "driver.py").write_text(LIVE_DRIVER)
    _run([sys.executable, "driver.py", "submit", "8"], proj, env)
    original = JobsDB(proj / "_expyre" / "jobs.db")
    (row,) = original.select()
    assert row["status"] == "submitted" and row["remote_id"]
    copy = tmp_path / "proj_copy"
    subprocess.run(["cp", "-a", str(proj), str(copy)], check=True)

    removed = _xpr(["rm", "-s", "*", "--cancel", "-c", "-y"], copy, env)
    assert "removed 1 job(s)" in removed.stdout
    assert "is a copy of" in removed.stderr and "1 job(s) queued or running" in removed.stderr
    # the original's job was not cancelled: it finishes and its project collects it
    assert _run([sys.executable, "driver.py", "wait", "8"], proj, env).stdout.split()[-1] == (
        "slept"
    )
    assert original.get(row["id"])["n_submissions"] == 1
    copy_db = JobsDB(copy / "_expyre" / "jobs.db")
    assert original.project_id != copy_db.project_id


def test_a_copy_gives_every_job_a_new_id_and_keeps_its_history(tmp_path):
    """Job ids are the jobs' names in a queue: a copy sharing them could take the
    original's queued job for its own when it looks for a lost submission by name."""
    env = _env(tmp_path)
    proj = _make_project(tmp_path)
    assert _drive(proj, env)[0] == [0, 1, 4]
    original = {r["key"]: r for r in JobsDB(proj / "_expyre" / "jobs.db").select()}
    copy = tmp_path / "proj_copy"
    subprocess.run(["cp", "-a", str(proj), str(copy)], check=True)
    copy_db = JobsDB(copy / "_expyre" / "jobs.db")
    copied = {r["key"]: r for r in copy_db.select()}
    assert copied.keys() == original.keys()
    for key, row in copied.items():
        assert row["id"] != original[key]["id"] and row["status"] == "processed"
        history = copy_db.history(row["id"])
        assert [h["to_state"] for h in history[:-1]] == [
            h["to_state"] for h in JobsDB(proj / "_expyre" / "jobs.db").history(original[key]["id"])
        ]
        assert original[key]["id"] in history[-1]["reason"]
    # the copy's rerun reuses every job: nothing submitted again
    (copy / "results.json").unlink()
    assert _drive(copy, env)[0] == [0, 1, 4]
    assert {r["n_submissions"] for r in copy_db.select()} == {1}
