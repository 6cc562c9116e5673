"""What would fail after the queue wait fails before the first submission, as one message.

Each case gives one bad input to a queued ``wfl.map`` on the embedded local queue and checks
that the error names the input, its value and the fix, that no job was created or submitted
and that the mapped function never ran.
"""

import re
import sqlite3
import sys
import threading

import cloudpickle
import pytest
from _wfl_testdata import perturbed_cu_cells

from wfl.autoparallelize.preflight import PreflightError
from wfl.configset import ConfigSet, OutputSpec
from wfl.map import map as wfl_map

cloudpickle.register_pickle_by_value(sys.modules[__name__])


def _touch_and_return(atoms, marker_dir, *extra):
    from pathlib import Path

    (Path(marker_dir) / f"ran_{atoms.info['id']}").write_text("x")
    return atoms


def _info(**extra):
    info = {
        "sys_name": "local",
        "job_name": "pre",
        "resources": {"num_cores": 1, "max_time": "10m"},
        "partial_node": True,
        "num_inputs_per_queued_job": 1,
        "check_interval": 0.5,
    }
    info.update(extra)
    return {k: v for k, v in info.items() if v is not None}


def _n_jobs(root):
    if not (root / "jobs.db").exists():
        return 0
    with sqlite3.connect(root / "jobs.db") as db:
        return db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]


CASES = {
    "unwritable_output": (
        {},
        "blocker/out.xyz",
        (),
        [r"OutputSpec file '.*blocker/out.xyz' cannot be written", "writable directory"],
    ),
    "unknown_system": (
        {"sys_name": "mycluster"},
        "out.xyz",
        (),
        [r"sys_name='mycluster'", r"defined systems are \['local'\]", "add it to config.json"],
    ),
    "fits_no_partition": (
        {"resources": {"num_cores": 64, "max_time": "1h"}},
        "out.xyz",
        (),
        ["resources .*num_cores.*64.* on system 'local'", "ask for at most 2 cores"],
    ),
    "needs_partial_node": (
        {"partial_node": None},
        "out.xyz",
        (),
        ["less than one node", 'fits with "partial_node": true'],
    ),
    "missing_input_file": (
        {"input_files": ["POTCARs"]},
        "out.xyz",
        (),
        ["input_files entry 'POTCARs' does not exist", "create it, or fix or remove"],
    ),
    "unpicklable_argument": (
        {},
        "out.xyz",
        (threading.Lock(),),
        ["argument args = .*lock", "cannot be sent to a queued job", "picklable value"],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_before_any_submission(make_local_project, tmp_path, case):
    root = make_local_project(cores=2)
    remote_extra, output, extra_args, patterns = CASES[case]
    (tmp_path / "blocker").write_text("a file where a directory is needed")
    markers = tmp_path / "markers"
    markers.mkdir()
    with pytest.raises(PreflightError) as caught:
        wfl_map(
            ConfigSet(perturbed_cu_cells(3)),
            OutputSpec(output),
            _touch_and_return,
            args=(str(markers), *extra_args),
            autopara_info={"remote_info": _info(**remote_extra)},
        )
    message = str(caught.value)
    assert "nothing was submitted or run" in message
    assert len(caught.value.problems) == 1, message
    for pattern in patterns:
        assert re.search(pattern, message), (pattern, message)
    assert _n_jobs(root) == 0
    assert list(markers.iterdir()) == []


def test_unknown_resources_key_names_it_and_the_allowed_keys(make_local_project):
    make_local_project(cores=2)
    with pytest.raises(
        ValueError, match=r"ncores.*allowed keys are max_time, num_nodes, num_cores"
    ):
        wfl_map(
            ConfigSet(perturbed_cu_cells(1)),
            OutputSpec(),
            _touch_and_return,
            args=("/nonexistent",),
            autopara_info={"remote_info": _info(resources={"ncores": 1, "max_time": "1h"})},
        )


def test_unwritable_output_fails_before_a_local_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WFL_EXPYRE_INFO", raising=False)
    (tmp_path / "blocker").write_text("x")
    markers = tmp_path / "markers"
    markers.mkdir()
    with pytest.raises(PreflightError, match="blocker/out.xyz' cannot be written"):
        wfl_map(
            ConfigSet(perturbed_cu_cells(2)),
            OutputSpec("blocker/out.xyz"),
            _touch_and_return,
            args=(str(markers),),
            autopara_info={"num_python_subprocesses": 0},
        )
    assert list(markers.iterdir()) == []


def test_system_whose_python_cannot_import_the_package_gets_no_job(make_local_project, tmp_path):
    """The real preflight: the system's python runs (here: this python, isolated from the
    venv's packages), cannot import expyre, and nothing is staged or submitted."""
    import json

    root = make_local_project(cores=2)
    config = json.loads((root / "config.json").read_text())
    config["systems"]["local"]["python_cmd"] = f"{sys.executable} -I -S"
    (root / "config.json").write_text(json.dumps(config))
    markers = tmp_path / "markers"
    markers.mkdir()
    with pytest.raises(PreflightError) as caught:
        wfl_map(
            ConfigSet(perturbed_cu_cells(2)),
            OutputSpec(),
            _touch_and_return,
            args=(str(markers),),
            autopara_info={"remote_info": _info()},
        )
    message = str(caught.value)
    assert "cannot import expyre" in message and "-I -S" in message
    assert '"commands"' in message  # the fix: what to put in config.json
    assert _n_jobs(root) == 0 and not (root / "stage").exists()
    assert list(markers.iterdir()) == []


def _complain_and_fail(atoms):
    import sys

    for i in range(40):
        print(f"diagnostic line {i} from the job", file=sys.stderr)
    raise RuntimeError("the calculation blew up")


def test_failure_report_shows_the_jobs_stderr_tail(make_local_project):
    from wfl.autoparallelize.remote import QueuedJobsFailed

    make_local_project(cores=2)
    with pytest.raises(QueuedJobsFailed) as caught:
        wfl_map(
            ConfigSet(perturbed_cu_cells(1)),
            OutputSpec(),
            _complain_and_fail,
            autopara_info={"remote_info": _info(job_name="noisy")},
        )
    report = str(caught.value)
    assert "the calculation blew up" in report
    assert "diagnostic line 39 from the job" in report  # the last lines are in the report
    assert "diagnostic line 0 from the job" not in report  # a tail, not the whole log
