"""AutoparaInfo: fields, validation, merge precedence, and never mutating the caller's objects."""

import copy
import pickle

import pytest
from _wfl_testdata import perturbed_cu_cells
from ase.calculators.emt import EMT

from wfl.autoparallelize import AutoparaInfo
from wfl.configset import OutputSpec
from wfl.generate.optimize import optimize


def test_defaults():
    info = AutoparaInfo()
    assert info.as_dict() == {
        "num_inputs_per_python_subprocess": 1,
        "num_python_subprocesses": None,
        "skip_failed": True,
        "initializer": None,
        "iterable_arg": 0,
        "remote_info": None,
        "remote_label": None,
        "hash_ignore": [],
    }


def test_merge_precedence_user_over_op_defaults_over_class_defaults():
    user = AutoparaInfo(num_python_subprocesses=2)
    merged = AutoparaInfo.merged(
        user, {"num_inputs_per_python_subprocess": 5, "num_python_subprocesses": 7}
    )
    assert merged.num_python_subprocesses == 2
    assert merged.num_inputs_per_python_subprocess == 5
    assert merged.skip_failed is True
    assert AutoparaInfo.merged({"skip_failed": False}, None).skip_failed is False


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_inputs_per_python_subproces": 2}, "unknown field 'num_inputs_per_python_subproces'"),
        ({"num_inputs_per_python_subprocess": 0}, "positive int"),
        ({"num_python_subprocesses": -1}, "int >= 0"),
        ({"initializer": print}, "function, args"),
        ({"hash_ignore": "rng"}, "list of argument names"),
    ],
)
def test_bad_fields_are_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AutoparaInfo(**kwargs)
    with pytest.raises(ValueError, match=match):
        AutoparaInfo.merged(kwargs)


def test_pickle_round_trip():
    info = AutoparaInfo(num_python_subprocesses=2, hash_ignore=["rng"])
    assert pickle.loads(pickle.dumps(info)) == info


def test_callers_autoparainfo_and_dicts_unchanged_after_call(tmp_path, monkeypatch):
    monkeypatch.delenv("WFL_NUM_PYTHON_SUBPROCESSES", raising=False)
    remote = {"sys_name": "x", "resources": {"num_nodes": 1}}
    user_info = AutoparaInfo(num_python_subprocesses=0, hash_ignore=["steps"])
    user_dict = {"num_inputs_per_python_subprocess": 2, "hash_ignore": ["fmax"]}
    opt_kwargs = {"maxstep": 0.1}
    before = (copy.deepcopy(user_info.as_dict()), copy.deepcopy(user_dict), dict(opt_kwargs))
    before_remote = copy.deepcopy(remote)
    configs = perturbed_cu_cells(2)
    for info in (user_info, user_dict):
        optimize(
            configs,
            OutputSpec(),
            calculator=EMT(),
            steps=3,
            autopara_info=info,
            optimizer_kwargs=opt_kwargs,
        )
    assert (user_info.as_dict(), user_dict, opt_kwargs) == before
    assert user_info.explicitly_set() == {"num_python_subprocesses": 0, "hash_ignore": ["steps"]}
    # a value given to AutoparaInfo is copied: changing the original later changes nothing
    info = AutoparaInfo(remote_info=remote)
    info.remote_info["sys_name"] = "changed"
    assert remote == before_remote
