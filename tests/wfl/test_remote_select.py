"""Selecting calls for the queue with WFL_EXPYRE_INFO: table tests of the key matching rules."""

import json

import pytest

from wfl.autoparallelize.remoteinfo import RemoteInfo
from wfl.autoparallelize.select import ExpyreInfoSelection, select_remote_info, user_frames

RI = {"sys_name": "local", "job_name": "j", "resources": {"num_cores": 1, "max_time": "1h"}}

# a fake call stack: outermost first, (real path, function name, qualname)
STACK = [
    ("/home/u/proj/do_workflow.py", "<module>", "<module>"),
    ("/home/u/proj/do_workflow.py", "main", "main"),
    ("/home/u/proj/steps/md_steps.py", "do_MD_bulk_defect_step", "do_MD_bulk_defect_step"),
    ("/site/wfl/generate_configs/minim.py", "run", "run"),
]


def _select(key, frames=STACK, label=None):
    selection = ExpyreInfoSelection(json.dumps({key: RI}))
    return selection.select(label, frames)


@pytest.mark.parametrize(
    "key, label, selected",
    [
        # single path item: must be the innermost frame (the function calling autoparallelize)
        ("generate_configs/minim.py::run", None, True),
        ("minim.py::run", None, True),
        ("wfl/generate_configs/minim.py::run", None, True),
        ("nim.py::run", None, False),  # path boundary: nim.py is not minim.py
        ("minim.py::ru", None, False),  # exact function names
        ("minim.py::r.n", None, False),  # no regex wildcards
        ("md_steps.py::do_MD_bulk_defect_step", None, False),  # not innermost on its own
        # two items: outer then inner
        ("md_steps.py::do_MD_bulk_defect_step,generate_configs/minim.py::run", None, True),
        ("steps/md_steps.py::do_MD_bulk_defect_step, minim.py::run", None, True),
        ("do_workflow.py::main,minim.py::run", None, False),  # must be consecutive frames
        ("minim.py::run,md_steps.py::do_MD_bulk_defect_step", None, False),  # order matters
        # labels
        ("relax_bulk", "relax_bulk", True),
        ("relax_bulk", "relax_surface", False),
        ("relax_bulk", None, False),
        ("md_steps.py::do_MD_bulk_defect_step,minim.py::run,relax_bulk", "relax_bulk", True),
        ("md_steps.py::do_MD_bulk_defect_step,minim.py::run,relax_bulk", "other", False),
    ],
)
def test_key_matching_table(key, label, selected):
    result = _select(key, label=label)
    assert (result is not None) == selected
    if selected:
        assert result == RemoteInfo.from_value(RI)


def test_first_matching_key_wins_and_unused_keys_are_reported():
    info = {
        "minim.py::run": dict(RI, job_name="first"),
        "generate_configs/minim.py::run": dict(RI, job_name="second"),
        "typo.py::run": dict(RI, job_name="never"),
    }
    selection = ExpyreInfoSelection(json.dumps(info))
    assert selection.select(None, STACK).job_name == "first"
    assert selection.unused_keys() == ["generate_configs/minim.py::run", "typo.py::run"]


def test_sys_name_at_top_level_applies_to_every_call():
    selection = ExpyreInfoSelection(json.dumps(RI))
    assert selection.select(None, STACK).job_name == "j"
    assert selection.select(None, []).job_name == "j"


def test_value_may_be_a_file_path_or_yaml(tmp_path):
    f = tmp_path / "remoteinfo.json"
    f.write_text(json.dumps({"minim.py::run": RI}))
    assert ExpyreInfoSelection(str(f)).select(None, STACK) is not None
    yaml_text = "minim.py::run:\n  sys_name: local\n  job_name: y\n  resources: {num_cores: 1, max_time: 1h}\n"
    assert ExpyreInfoSelection(yaml_text).select(None, STACK).job_name == "y"


@pytest.mark.parametrize("bad", ["/no/such/file.json", "just words"])
def test_unreadable_value_is_one_clear_error(bad):
    with pytest.raises(
        ValueError, match="neither valid JSON/YAML .* nor the path of an existing file"
    ):
        ExpyreInfoSelection(bad)


def test_json_syntax_error_is_reported_with_line_and_column_not_reread_as_yaml(tmp_path):
    # a trailing comma: YAML would read this text as a dict and hide the mistake
    text = '{"minim.py::run": {"sys_name": "local", "job_name": "j",\n  "resources": {},}}'
    with pytest.raises(ValueError, match=r"not valid JSON: .* at line 2, column 19") as caught:
        ExpyreInfoSelection(text)
    assert '"resources": {},}}' in str(caught.value)
    f = tmp_path / "remoteinfo.json"
    f.write_text("{\n\n  'minim.py::run': {}\n}\n")
    with pytest.raises(ValueError, match=r"remoteinfo.json.*not valid JSON: .* line 3, column 3"):
        ExpyreInfoSelection(str(f))


def _relax_step(autopara_info):
    return select_remote_info(autopara_info)


def test_unmatched_call_says_so_at_once_naming_its_keys_and_the_nearest_key(monkeypatch, capsys):
    from wfl.autoparallelize import select

    monkeypatch.setattr(select, "_cache", {})  # no process-exit warning for these test keys
    typo = "wfl/test_remote_select.py::_relax_stpe"
    other = "calculators/generic.py::calculate"
    monkeypatch.setenv("WFL_EXPYRE_INFO", json.dumps({other: RI, typo: RI}))
    monkeypatch.delenv("WFL_EXPYRE_INFO_STRICT", raising=False)
    info = _Info()
    info.remote_label = "relax_bulk"
    assert _relax_step(info) is None  # runs locally ...
    err = capsys.readouterr().err  # ... and says so now, not at process exit
    assert "no key matches this call, so it runs HERE" in err
    assert "'wfl/test_remote_select.py::_relax_step'" in err  # the call's own keys
    assert "'relax_bulk'" in err
    assert f"nearest key in WFL_EXPYRE_INFO: {typo!r}" in err
    assert "WFL_EXPYRE_INFO_STRICT=1" in err

    monkeypatch.setenv("WFL_EXPYRE_INFO_STRICT", "1")
    with pytest.raises(ValueError, match="runs HERE.*WFL_EXPYRE_INFO_STRICT is set, so this is"):
        _relax_step(info)
    monkeypatch.setenv(
        "WFL_EXPYRE_INFO", json.dumps({"wfl/test_remote_select.py::_relax_step": RI})
    )
    assert _relax_step(info) is not None  # a matching call is fine in strict mode


def test_strict_mode_with_a_mistyped_value_is_an_error_not_off(monkeypatch):
    """ "WFL_EXPYRE_INFO_STRICT=ture" used to mean "not strict": the call ran here anyway."""
    from wfl.autoparallelize import select

    monkeypatch.setattr(select, "_cache", {})
    monkeypatch.setenv("WFL_EXPYRE_INFO", json.dumps({"calculators/generic.py::calculate": RI}))
    monkeypatch.setenv("WFL_EXPYRE_INFO_STRICT", "ture")
    info = _Info()
    info.remote_label = "relax_bulk"
    with pytest.raises(ValueError, match=r"WFL_EXPYRE_INFO_STRICT='ture' is neither on nor off"):
        _relax_step(info)


def test_bad_remote_info_in_a_key_names_the_key():
    with pytest.raises(ValueError, match="key 'minim.py::run'.*unknown RemoteInfo key"):
        ExpyreInfoSelection(json.dumps({"minim.py::run": dict(RI, num_cores=3)}))


def _workflow_step(autopara_info):
    return select_remote_info(autopara_info)


class _Info:
    remote_info = None
    remote_label = None


def test_real_stack_matching_through_env(monkeypatch):
    monkeypatch.setenv(
        "WFL_EXPYRE_INFO",
        json.dumps({"wfl/test_remote_select.py::_workflow_step": RI}),
    )
    assert _workflow_step(_Info()) is not None
    assert select_remote_info(_Info()) is None  # called from the test function, not the step
    frames = user_frames()
    assert frames[-1][1] == "test_real_stack_matching_through_env"


def test_explicit_remote_info_wins_and_pytest_extras_merge(monkeypatch):
    monkeypatch.delenv("WFL_EXPYRE_INFO", raising=False)
    monkeypatch.setenv("WFL_PYTEST_EXPYRE_INFO", json.dumps({"timeout": 99}))
    info = _Info()
    info.remote_info = dict(RI)
    chosen = select_remote_info(info)
    assert chosen.timeout == 99 and chosen.job_name == "j"
    assert info.remote_info == RI  # the caller's dict is not modified


def test_unused_key_warning_at_process_end(tmp_path):
    """A typo in a key must not silently run everything locally: the process end warns."""
    import os
    import subprocess
    import sys

    script = tmp_path / "workflow.py"
    script.write_text(
        "from ase.build import bulk\n"
        "from ase.calculators.emt import EMT\n"
        "from wfl.configset import ConfigSet, OutputSpec\n"
        "from wfl.generate.optimize import optimize\n"
        "optimize(ConfigSet([bulk('Cu', cubic=True)]), OutputSpec(), calculator=(EMT, [], {}))\n"
        "print('finished')\n"
    )
    info = {"generate/optimise.py::optimize": RI}  # British spelling: matches nothing
    env = dict(os.environ, WFL_EXPYRE_INFO=json.dumps(info), EXPYRE_ROOT=str(tmp_path / "_x"))
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "finished" in done.stdout
    assert "'generate/optimise.py::optimize' matched no autoparallelized call" in done.stderr
    assert not (tmp_path / "_x").exists()  # nothing went to a queue
