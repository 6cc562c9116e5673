"""Job keys: canonical across interpreters, sensitive to code, blind to comments."""

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from ase.build import bulk

from expyre.keys import argument_digest, code_fingerprint, input_files_digest, job_key

HELPERS_V1 = '''
def helper(x):
    return x + 1


def op(items, scale=1.0):
    """Docstring v1."""
    # comment v1
    return [helper(i) * scale for i in items]
'''


def _write_module(directory, name, text):
    (directory / f"{name}.py").write_text(textwrap.dedent(text))


def _key_in_fresh_interpreter(directory, module, hashseed, call="op", extra=""):
    """Key of module.op([1, 2, {...}], scale=2.0) computed by a brand-new python process."""
    script = f"""
import sys
sys.path.insert(0, {str(directory)!r})
import numpy as np
from expyre.keys import job_key
import {module} as m
{extra}
args = ([1, 2, {{"b": np.arange(3), "a": {{1, 2, 3}}}}],)
k = job_key(m.{call}, args, {{"scale": 2.0}})
print(k.call_digest, k.code_fingerprint, k.key)
"""
    env = dict(os.environ, PYTHONHASHSEED=str(hashseed))
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.split()


def test_same_call_same_key_across_interpreters_and_hash_seeds(tmp_path):
    _write_module(tmp_path, "ops_a", HELPERS_V1)
    k1 = _key_in_fresh_interpreter(tmp_path, "ops_a", 1)
    k2 = _key_in_fresh_interpreter(tmp_path, "ops_a", 12345)
    assert k1 == k2


def test_comment_and_docstring_edits_keep_key(tmp_path):
    _write_module(tmp_path, "ops_b", HELPERS_V1)
    before = _key_in_fresh_interpreter(tmp_path, "ops_b", 0)
    edited = HELPERS_V1.replace("Docstring v1.", "A new, longer docstring.").replace(
        "# comment v1", "# a totally different comment"
    )
    _write_module(tmp_path, "ops_b", edited)
    after = _key_in_fresh_interpreter(tmp_path, "ops_b", 0)
    assert before == after


def test_function_body_edit_changes_fingerprint_not_call_digest(tmp_path):
    _write_module(tmp_path, "ops_c", HELPERS_V1)
    before = _key_in_fresh_interpreter(tmp_path, "ops_c", 0)
    _write_module(tmp_path, "ops_c", HELPERS_V1.replace("* scale", "* scale * 2"))
    after = _key_in_fresh_interpreter(tmp_path, "ops_c", 0)
    assert before[0] == after[0]  # same call
    assert before[1] != after[1]  # different code
    assert before[2] != after[2]


def test_helper_edit_changes_key(tmp_path):
    _write_module(tmp_path, "ops_d", HELPERS_V1)
    before = _key_in_fresh_interpreter(tmp_path, "ops_d", 0)
    _write_module(tmp_path, "ops_d", HELPERS_V1.replace("return x + 1", "return x + 2"))
    after = _key_in_fresh_interpreter(tmp_path, "ops_d", 0)
    assert before[1] != after[1]


def test_helper_in_other_user_module_edit_changes_key(tmp_path):
    _write_module(tmp_path, "util_e", "def helper(x):\n    return x + 1\n")
    _write_module(
        tmp_path,
        "ops_e",
        "import util_e\n\ndef op(items, scale=1.0):\n    return [util_e.helper(i) for i in items]\n",
    )
    before = _key_in_fresh_interpreter(tmp_path, "ops_e", 0)
    _write_module(tmp_path, "util_e", "def helper(x):\n    return x - 1\n")
    after = _key_in_fresh_interpreter(tmp_path, "ops_e", 0)
    assert before[1] != after[1]


def test_function_passed_as_argument_is_fingerprinted(tmp_path):
    _write_module(tmp_path, "ops_f", HELPERS_V1)
    # direct check in this process: the op receives a function argument
    import importlib

    sys.path.insert(0, str(tmp_path))
    try:
        _write_module(tmp_path, "inner_g", "def inner(x):\n    return x\n")
        inner_g = importlib.import_module("inner_g")
        ops = importlib.import_module("ops_f")
        k1 = job_key(ops.op, ([1], inner_g.inner))
        (tmp_path / "inner_g.py").write_text("def inner(x):\n    return -x\n")
        importlib.reload(inner_g)
        code_fingerprint.cache_clear()
        k2 = job_key(ops.op, ([1], inner_g.inner))
        assert k1.call_digest == k2.call_digest
        assert k1.code_fingerprint != k2.code_fingerprint
    finally:
        sys.path.remove(str(tmp_path))


def test_changing_an_argument_changes_call_digest():
    def f(x, y=1):
        return x

    assert job_key(f, (1,), {"y": 2}).call_digest != job_key(f, (1,), {"y": 3}).call_digest
    assert job_key(f, (np.zeros(3),)).call_digest != job_key(f, (np.ones(3),)).call_digest


def test_hash_ignore_drops_named_arguments_positional_or_keyword():
    def f(x, initializer=None):
        return x

    assert job_key(f, (1, "a"), hash_ignore=["initializer"]) == job_key(
        f, (1,), {"initializer": "b"}, hash_ignore=["initializer"]
    )
    assert job_key(f, (1, "a")) != job_key(f, (1, "b"))


def test_dict_order_sets_and_pickle_roundtrip_do_not_matter():
    a = {"x": 1, "y": [1.5, np.arange(4)], "s": {3, 1, 2}}
    b = {"s": {1, 2, 3}, "y": [1.5, np.arange(4)], "x": 1}
    assert argument_digest(a) == argument_digest(b)
    assert argument_digest(a) == argument_digest(pickle.loads(pickle.dumps(a)))
    assert argument_digest({"x": 1}) != argument_digest({"x": 1.0})


def test_atoms_by_value_and_rng_by_state():
    at = bulk("Cu", cubic=True)
    same = pickle.loads(pickle.dumps(at))
    assert argument_digest(at) == argument_digest(same)
    moved = at.copy()
    moved.positions[0, 0] += 1e-9
    assert argument_digest(at) != argument_digest(moved)
    rng1, rng2 = np.random.default_rng(5), np.random.default_rng(5)
    assert argument_digest(rng1) == argument_digest(rng2)
    rng2.random()
    assert argument_digest(rng1) != argument_digest(rng2)


def test_input_files_names_and_bytes(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "POTCAR").write_text("abc")
    d1 = input_files_digest(["d"], base_dir=tmp_path)
    (tmp_path / "d" / "POTCAR").write_text("abd")
    assert input_files_digest(["d"], base_dir=tmp_path) != d1
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        input_files_digest(["missing.txt"], base_dir=tmp_path)
