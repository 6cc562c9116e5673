"""expyre.plan: previews that read the project and run nothing anywhere."""

import json
import os

import pytest

from expyre.config import load_config
from expyre.plan import NEW, REUSE, STALE, preview_job, preview_submission, render


def _square(x):
    return x * x


@pytest.fixture
def project(tmp_path, monkeypatch):
    root = tmp_path / "_expyre"
    root.mkdir()
    systems = {
        # a host that cannot resolve: any ssh or scheduler command would fail the preview
        "cluster": {
            "host": "nosuchhost.invalid",
            "scheduler": "slurm",
            "rundir": "/scratch/me/runs",
            "partitions": {
                "small": {"num_cores": 16, "max_time": "2h", "max_mem": "64GB"},
                "big": {"num_cores": 64, "max_time": "48h", "max_mem": "256GB"},
            },
        },
        "home": {
            "host": "nosuchhost.invalid",
            "scheduler": "sge",
            "partitions": {"all.q": {"num_cores": 8, "max_time": None, "max_mem": None}},
        },
    }
    (root / "config.json").write_text(json.dumps({"systems": systems}))
    monkeypatch.setenv("EXPYRE_ROOT", str(root))
    monkeypatch.setenv("EXPYRE_RSH", "false")  # a remote command would fail, not hang
    monkeypatch.chdir(tmp_path)
    return root


def test_submission_preview_of_a_remote_slurm_system_runs_no_command(project):
    sub = preview_submission(
        {"num_nodes": 2, "max_time": "10h"}, job_name="relax", system_name="cluster"
    )
    assert (sub["system"], sub["scheduler"], sub["partition"]) == ("cluster", "slurm", "big")
    assert (sub["num_nodes"], sub["num_cores"], sub["num_cores_per_node"]) == (2, 128, 64)
    assert "#SBATCH --partition=big" in sub["header"]
    assert "#SBATCH --nodes=2" in sub["header"]
    # jobs run in a directory of this project's own; it has no id before its first run
    output = "#SBATCH --output=/scratch/me/runs/NEW_PROJECT/relax_"
    assert any(h.startswith(output) for h in sub["header"]), sub["header"]
    # a run directory relative to the remote home is shown, not looked up over ssh
    home = preview_submission({"num_cores": 8, "max_time": "1h"}, job_name="j", system_name="home")
    assert any("~/expyre_rundir/NEW_PROJECT/j_" in h for h in home["header"])
    assert sorted(os.listdir(project)) == ["config.json"]


def test_submission_preview_shows_the_run_directory_of_this_project(project):
    from expyre.jobsdb import JobsDB

    project_id = JobsDB(project / "jobs.db").project_id  # the project's first run made it
    sub = preview_submission(
        {"num_nodes": 1, "max_time": "1h"}, job_name="r", system_name="cluster"
    )
    output = f"#SBATCH --output=/scratch/me/runs/{project_id}/r_"
    assert project_id.startswith("xpp_") and any(h.startswith(output) for h in sub["header"])


def test_submission_preview_reports_what_does_not_fit(project):
    sub = preview_submission(
        {"num_cores": 100, "max_time": "100h"}, job_name="x", system_name="cluster"
    )
    assert "no partition fits" in sub["error"]
    assert "a real run would fail: no partition fits" in render(
        [{"call": "f.py::g", "where": "queue", "num_items": 1, "submission": sub, "jobs": []}]
    )


def test_job_preview_new_reuse_stale_against_the_real_database(project):
    from expyre.func import ExPyRe

    assert preview_job("sq", function=_square, args=[3])["verdict"] == NEW
    assert not (project / "jobs.db").exists()  # the preview did not create the database

    job = ExPyRe("sq", function=_square, args=[3])
    again = preview_job("sq", function=_square, args=[3])
    assert (again["verdict"], again["job_id"], again["status"]) == (REUSE, job.id, "created")

    other_args = preview_job("sq", function=_square, args=[4])
    assert other_args["verdict"] == NEW and job.id in other_args["reason"]

    # the same call by other code: compiled anew so the fingerprint differs, same name
    namespace = {}
    exec("def _square(x):\n    return x ** 2\n", namespace)
    edited = namespace["_square"]
    edited.__module__, edited.__qualname__ = _square.__module__, _square.__qualname__
    stale = preview_job("sq", function=edited, args=[3])
    assert stale["verdict"] == STALE and stale["job_id"] == job.id
    assert "code changed" in stale["reason"]
    assert load_config().db_path.exists() and job.refresh().status == "created"  # only looked


def test_xpr_plan_without_a_command_says_how_to_call_it(project):
    from click.testing import CliRunner

    from expyre.cli import cli

    result = CliRunner().invoke(cli, ["plan"])
    assert result.exit_code == 2
    assert "xpr plan -- python do_workflow.py" in result.output
