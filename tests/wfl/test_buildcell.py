"""wfl.generate.buildcell: AIRSS buildcell input, runs and output parsing.

AIRSS cannot be installed here, so by default these tests run a STAND-IN executable
(tests/standins/buildcell_standin.py) that reads buildcell's input format and prints one
random structure in its output format. Set WFL_PYTEST_BUILDCELL to the path of a real
``buildcell`` to run the same tests against it (the stand-in-only failure tests are then
skipped, with that reason).
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from wfl.configset import ConfigSet, OutputSpec
from wfl.generate.buildcell import BuildcellError, buildcell, conv_buildcell_out, create_input

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "buildcell_standin.py"
REAL_BUILDCELL = os.environ.get("WFL_PYTEST_BUILDCELL")
needs_standin = pytest.mark.skipif(
    bool(REAL_BUILDCELL), reason="uses the stand-in's failure hooks; WFL_PYTEST_BUILDCELL is set"
)


@pytest.fixture
def buildcell_cmd(tmp_path: Path) -> str:
    """Path of the buildcell executable: the real one if given, else the stand-in."""
    if REAL_BUILDCELL:
        return REAL_BUILDCELL
    exe = tmp_path / "bin" / "buildcell"
    exe.parent.mkdir()
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" "$@"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return str(exe)


def sio2_input(**extra) -> str:
    return create_input(
        z=[14, 8], vol_per_atom=[20.0, 10.0], bond_lengths=[2.2, 1.2], composition=[1, 2],
        natom=(3, 9), **extra,
    )  # fmt: skip


def test_create_input_text():
    # expected text written out by hand from buildcell's input format
    assert sio2_input().splitlines() == [
        "#TARGVOL=25-28",
        "#SPECIES=Si%NUM=1,O%NUM=2",
        "#NFORM={2}",
        "#SYMMOPS=1-8",
        "#SLACK=0.25",
        "#OVERLAP=0.1",
        "#COMPACT",
        "#MINSEP=0.5 Si-Si=2 O-Si=1.5 O-O=1.1",
        f"##EXTRA_INFO RSS_min_vol_per_atom={0.5 * 40 / 3}",
    ]
    assert "#NFORM={1,2,3}" in sio2_input(odd="also")
    assert "#NFORM={1,3}" in sio2_input(odd="only")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"z": [14, 8], "vol_per_atom": 10.0, "bond_lengths": 2.0}, "one entry per species"),
        ({"z": 14, "vol_per_atom": 10.0, "bond_lengths": 2.0, "odd": "yes"}, "odd='yes'"),
    ],
)
def test_create_input_bad_arguments_are_clear(kwargs, match):
    with pytest.raises(ValueError, match=match):
        create_input(**kwargs)


def test_buildcell_makes_one_structure_per_number_in_order(tmp_path, buildcell_cmd):
    out = OutputSpec(tmp_path / "rss.xyz")
    result = buildcell(
        range(5), out, buildcell_cmd, sio2_input(), extra_info={"stage": "rss"},
        perturbation=0.01, rng=np.random.default_rng(3),
    )  # fmt: skip
    structures = list(result)
    assert [at.info["buildcell_config_i"] for at in structures] == [0, 1, 2, 3, 4]
    for at in structures:
        assert at.info["config_type"] == "buildcell"
        assert at.info["stage"] == "rss"
        assert at.info["RSS_min_vol_per_atom"] == pytest.approx(0.5 * 40 / 3)
        assert at.info["buildcell_symmetry"].endswith("@ 0.01")
        symbols = at.get_chemical_symbols()
        assert symbols.count("O") == 2 * symbols.count("Si") > 0
        assert all(at.pbc)
    assert [at.info["buildcell_config_i"] for at in ConfigSet(tmp_path / "rss.xyz")] == list(
        range(5)
    )


def test_buildcell_rerun_is_skipped(tmp_path, buildcell_cmd, capfd):
    args = (range(3), OutputSpec(tmp_path / "rss.xyz"), buildcell_cmd, sio2_input())
    first = [at.positions.copy() for at in buildcell(*args)]
    capfd.readouterr()
    again = [at.positions for at in buildcell(*args)]
    assert "skipped" in capfd.readouterr().err
    # random structures: equal only because nothing was run again
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))


def test_buildcell_of_no_structures_is_an_empty_output(tmp_path, buildcell_cmd):
    result = buildcell(range(0), OutputSpec(tmp_path / "none.xyz"), buildcell_cmd, sio2_input())
    assert list(result) == []
    assert (tmp_path / "none.xyz").read_text() == ""


def test_empty_buildcell_input_is_a_clear_error(tmp_path, buildcell_cmd):
    with pytest.raises(ValueError, match="buildcell_input='' is empty; make it with create_input"):
        buildcell(range(2), OutputSpec(tmp_path / "x.xyz"), buildcell_cmd, "")
    assert not (tmp_path / "x.xyz").exists()


def test_missing_executable_is_a_clear_error(tmp_path):
    with pytest.raises(BuildcellError, match="install AIRSS"):
        buildcell(range(1), OutputSpec(), str(tmp_path / "no_such_buildcell"), sio2_input())


@needs_standin
def test_no_output_from_buildcell_is_an_error_with_its_stderr(tmp_path, buildcell_cmd):
    text = sio2_input() + "#STANDIN_FAIL=empty\n"
    with pytest.raises(BuildcellError, match="printed nothing.*asked to print nothing"):
        buildcell(range(1), OutputSpec(), buildcell_cmd, text)


@needs_standin
def test_unreadable_output_is_skipped_or_raised(tmp_path, buildcell_cmd):
    text = sio2_input() + "#STANDIN_FAIL=garbage\n"
    assert list(buildcell(range(2), OutputSpec(), buildcell_cmd, text)) == []
    with pytest.raises(BuildcellError, match="could not be read"):
        buildcell(range(1), OutputSpec(), buildcell_cmd, text, skip_failures=False)


@needs_standin
def test_comments_in_the_cell_text_are_ignored(buildcell_cmd):
    structures = list(
        buildcell(range(1), OutputSpec(), buildcell_cmd, sio2_input() + "#STANDIN_COMMENTS\n")
    )
    assert len(structures) == 1 and len(structures[0]) == 6


def test_conv_buildcell_out_reads_abc_and_cartesian_lattices():
    abc = (
        "%BLOCK LATTICE_ABC\n3 4 5\n90 90 90\n%ENDBLOCK LATTICE_ABC\n"
        "%BLOCK POSITIONS_FRAC\nSi 0.5 0.5 0.5 # a comment\n%ENDBLOCK POSITIONS_FRAC\n"
    )
    cart = abc.replace("LATTICE_ABC\n3 4 5\n90 90 90", "LATTICE_CART\n3 0 0\n0 4 0\n0 0 5")
    for text in (abc, cart):
        (at,) = conv_buildcell_out(text)
        assert np.allclose(at.cell.lengths(), [3, 4, 5])
        assert np.allclose(at.positions, [[1.5, 2, 2.5]])
    with pytest.raises(BuildcellError, match="before any lattice"):
        conv_buildcell_out("%BLOCK POSITIONS_FRAC\nSi 0 0 0\n%ENDBLOCK POSITIONS_FRAC\n")


def test_inputs_must_be_structure_numbers(tmp_path, buildcell_cmd):
    with pytest.raises(ValueError, match="not a ConfigSet"):
        buildcell(ConfigSet([]), OutputSpec(), buildcell_cmd, sio2_input())
    with pytest.raises(ValueError, match="must be integers"):
        buildcell(["a"], OutputSpec(), buildcell_cmd, sio2_input())
