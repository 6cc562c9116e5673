"""AutoparaInfo: fields, validation, merge precedence, and never mutating the caller's objects."""

import copy
import inspect
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


# The keywords wfl 0.3.5's AutoparaInfo(**kwargs) accepted (its _kwargs table).
WFL_0_3_5_FIELDS = (
    "num_inputs_per_python_subprocess",
    "iterable_arg",
    "skip_failed",
    "initializer",
    "num_python_subprocesses",
    "remote_info",
    "remote_label",
)


def test_signature_names_every_field_for_help_and_ides():
    params = inspect.signature(AutoparaInfo).parameters
    assert set(WFL_0_3_5_FIELDS) <= set(params)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    assert repr(params["num_inputs_per_python_subprocess"].default) == "default(1)"


def test_given_class_default_still_overrides_the_operation_default():
    # giving a field its class default is a choice: it beats the operation's default
    merged = AutoparaInfo.merged(
        AutoparaInfo(num_inputs_per_python_subprocess=1), {"num_inputs_per_python_subprocess": 5}
    )
    assert merged.num_inputs_per_python_subprocess == 1


def test_assignment_is_validated_and_counts_as_set():
    info = AutoparaInfo()
    info.skip_failed = False
    assert info.explicitly_set() == {"skip_failed": False}
    with pytest.raises(ValueError, match="skip_failed='no' is invalid; expected True or False"):
        info.skip_failed = "no"
    with pytest.raises(ValueError, match="unknown field 'skip_faild'"):
        info.skip_faild = True
    with pytest.raises(AttributeError, match="no field 'skip_faild'; fields are"):
        info.skip_faild  # noqa: B018


def test_copy_and_pickle_keep_which_fields_were_given():
    info = AutoparaInfo(num_python_subprocesses=2)
    info.update_defaults({"num_inputs_per_python_subprocess": 5, "num_python_subprocesses": 9})
    for twin in (copy.deepcopy(info), pickle.loads(pickle.dumps(info))):
        assert twin == info
        assert twin.explicitly_set() == {
            "num_python_subprocesses": 2,
            "num_inputs_per_python_subprocess": 5,
        }


def test_wfl_0_3_5_default_initializer_means_none():
    # (None, []) was wfl 0.3.5's default and scripts pass it explicitly: no initializer
    assert AutoparaInfo(initializer=(None, [])).initializer is None
    assert AutoparaInfo.merged({"initializer": (None, ())}).initializer is None
