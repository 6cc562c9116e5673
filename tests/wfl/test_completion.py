"""Skip-if-done is safe: same op+args+inputs+code reuses outputs, anything changed is an error."""

import importlib
import linecache
import subprocess
import sys
import textwrap

import pytest
from _wfl_testdata import perturbed_cu_cells
from ase.calculators.emt import EMT

from wfl.autoparallelize.completion import ReusedOutputsWarning
from wfl.configset import ConfigSet, OutputSpec
from wfl.map import map as wfl_map

CALLS = []


@pytest.fixture(autouse=True)
def _serial(monkeypatch):
    # counting calls needs the op to run in this process
    monkeypatch.delenv("WFL_NUM_PYTHON_SUBPROCESSES", raising=False)
    CALLS.clear()


def _shift(atoms, dx):
    CALLS.append(atoms.info["id"])
    atoms.positions[:, 0] += dx
    return atoms


def _other_shift(atoms, dx):
    atoms.positions[:, 1] += dx
    return atoms


def _run(tmp_path, configs, func=_shift, dx=0.5, **kw):
    return wfl_map(configs, OutputSpec("out.xyz", file_root=tmp_path, **kw), func, args=[dx])


def test_rerun_with_same_everything_is_skipped(tmp_path):
    configs = perturbed_cu_cells(3)
    first = [at.positions.copy() for at in _run(tmp_path, configs)]
    assert len(CALLS) == 3
    second = list(_run(tmp_path, configs))
    assert len(CALLS) == 3, "the op ran again although its outputs were complete"
    assert [at.positions.tolist() for at in second] == [p.tolist() for p in first]


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda c: {"configs": perturbed_cu_cells(3, seed=9)}, "different inputs"),
        (lambda c: {"configs": c, "dx": 0.7}, "different arguments"),
        (lambda c: {"configs": c, "func": _other_shift}, "different arguments"),
    ],
)
def test_changed_input_or_argument_is_clear_error(tmp_path, change, expected):
    configs = perturbed_cu_cells(3)
    _run(tmp_path, configs)
    with pytest.raises(ValueError, match=f"{expected}.*overwrite=True or delete them"):
        _run(tmp_path, **change(configs))
    assert len(CALLS) == 3


def test_changed_operation_is_clear_error(tmp_path):
    from wfl.generate.optimize import optimize

    configs = perturbed_cu_cells(2)
    _run(tmp_path, configs)
    with pytest.raises(ValueError, match="different operation .*map"):
        optimize(configs, OutputSpec("out.xyz", file_root=tmp_path), calculator=EMT(), steps=2)


def test_overwrite_recomputes(tmp_path):
    configs = perturbed_cu_cells(2)
    _run(tmp_path, configs)
    _run(tmp_path, configs, dx=0.7, overwrite=True)
    assert len(CALLS) == 4
    _run(tmp_path, configs, dx=0.7)  # the new record matches the new arguments
    assert len(CALLS) == 4


def test_files_without_record_are_reused_with_notice(tmp_path):
    import ase.io

    ase.io.write(tmp_path / "out.xyz", perturbed_cu_cells(2))
    with pytest.warns(ReusedOutputsWarning, match="no completion record"):
        out = _run(tmp_path, perturbed_cu_cells(5))
    assert len(CALLS) == 0
    assert len(out) == 2


def test_interrupted_close_is_redone(tmp_path):
    # close() renamed file a, then died before b: a has its record, b is missing
    configs = perturbed_cu_cells(2)
    inputs = [configs[:1], configs[1:]]
    wfl_map(inputs, OutputSpec(["a.xyz", "b.xyz"], file_root=tmp_path), _shift, args=[0.5])
    (tmp_path / "b.xyz").unlink()
    wfl_map(inputs, OutputSpec(["a.xyz", "b.xyz"], file_root=tmp_path), _shift, args=[0.5])
    assert len(CALLS) == 4 and (tmp_path / "b.xyz").exists()


OP_MODULE = """
from wfl.autoparallelize import autoparallelize


def _op(atoms_list, dx):
    # a comment
    for atoms in atoms_list:
        atoms.positions[:, 0] += {factor} * dx
    return atoms_list


def shift(*args, **kwargs):
    return autoparallelize(_op, *args, **kwargs)
"""


def _load_op_module(tmp_path, monkeypatch, source):
    (tmp_path / "mod_dir").mkdir(exist_ok=True)
    (tmp_path / "mod_dir" / "wfl_test_editable_op.py").write_text(source)
    linecache.clearcache()
    monkeypatch.syspath_prepend(str(tmp_path / "mod_dir"))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    if "wfl_test_editable_op" in sys.modules:
        return importlib.reload(sys.modules["wfl_test_editable_op"])
    return importlib.import_module("wfl_test_editable_op")


def test_edited_code_is_clear_error_but_comment_edit_is_not(tmp_path, monkeypatch):
    configs = perturbed_cu_cells(2)
    mod = _load_op_module(tmp_path, monkeypatch, OP_MODULE.format(factor="1.0"))
    mod.shift(configs, OutputSpec("out.xyz", file_root=tmp_path), 0.5)

    edited_comment = OP_MODULE.format(factor="1.0").replace("# a comment", "# another comment")
    mod = _load_op_module(tmp_path, monkeypatch, edited_comment)
    mod.shift(configs, OutputSpec("out.xyz", file_root=tmp_path), 0.5)  # no error: skipped

    mod = _load_op_module(tmp_path, monkeypatch, OP_MODULE.format(factor="2.0"))
    with pytest.raises(ValueError, match="different code.*overwrite=True or delete them"):
        mod.shift(configs, OutputSpec("out.xyz", file_root=tmp_path), 0.5)
    sys.modules.pop("wfl_test_editable_op", None)


SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from ase.build import bulk
    from ase.calculators.emt import EMT
    from wfl.configset import ConfigSet, OutputSpec
    from wfl.generate.md import md

    configs = [bulk("Cu", "fcc", a=3.6, cubic=True) for _ in range(2)]
    md(configs, OutputSpec(sys.argv[1]), calculator=(EMT, [], {}), steps=3,
       temperature=300.0, rng=np.random.default_rng(7))
    """
)


def test_skip_works_across_fresh_interpreters(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    out = tmp_path / "md.xyz"
    for seed in ("1", "2"):
        env = {"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}
        subprocess.run([sys.executable, str(script), str(out)], check=True, env=env, timeout=300)
        if seed == "1":
            inode = out.stat().st_ino
    # a rerun that recomputed would have renamed a new file into place
    assert out.stat().st_ino == inode
    assert len(ConfigSet(out)) == 8


FLAKY = set()  # ids of items whose first attempt fails (the op returns None for them)


def _flaky_shift(atoms, dx):
    CALLS.append(atoms.info["id"])
    if atoms.info["id"] in FLAKY:
        FLAKY.discard(atoms.info["id"])  # fails once, succeeds when retried
        return None
    atoms.positions[:, 0] += dx
    return atoms


def test_skipped_failed_items_leave_the_outputs_incomplete_so_a_rerun_retries(tmp_path, capfd):
    """skip_failed drops an item the operation failed on; the outputs without it are not
    the operation's complete result, so the rerun must run it again instead of skipping."""
    configs = perturbed_cu_cells(4)
    FLAKY.clear()
    FLAKY.add(configs[2].info["id"])
    first = list(_run(tmp_path, configs, func=_flaky_shift))
    assert len(first) == 3 and len(CALLS) == 4
    err = capfd.readouterr().err
    assert "1 of 4 items failed" in err and "rerun" in err

    CALLS.clear()
    second = list(_run(tmp_path, configs, func=_flaky_shift))
    assert "already complete" not in capfd.readouterr().err
    assert len(second) == 4 and configs[2].info["id"] in CALLS  # retried, now present
    CALLS.clear()
    assert len(list(_run(tmp_path, configs, func=_flaky_shift))) == 4
    assert CALLS == []  # complete now: the third run is skipped
