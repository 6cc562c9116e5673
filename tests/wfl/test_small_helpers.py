"""Small helpers scripts written for wfl 0.3.5 import: labels, rounding, run-dir cleaning."""

import pytest
from ase import Atoms

from wfl.generate.utils import save_config_type
from wfl.utils.file_utils import clean_dir
from wfl.utils.round_sig_figs import round_sig_figs
from wfl.utils.version import get_wfl_version


def test_save_config_type_append_overwrite_and_off():
    at = Atoms("H")
    save_config_type(at, "append", "md")  # no label yet: set
    save_config_type(at, "append", "T300")
    assert at.info["config_type"] == "md:T300"
    save_config_type(at, False, "ignored")
    assert at.info["config_type"] == "md:T300"
    save_config_type(at, "overwrite", "relaxed")
    assert at.info["config_type"] == "relaxed"
    with pytest.raises(ValueError, match="action='replace' is not"):
        save_config_type(at, "replace", "x")


@pytest.mark.parametrize(
    ("value", "n", "text"),
    [(1234.5, 2, "1200"), (0.000123456, 3, "0.000123"), (123456789, 3, "1.23e+08"),
     (99.96, 3, "100"), (-0.015, 1, "-0.01"), (0.0, 3, "0")],
)  # fmt: skip
def test_round_sig_figs(value, n, text):
    assert round_sig_figs(value, n) == text


def test_clean_dir_keeps_only_matching_entries(tmp_path):
    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    for name in ("OUTCAR", "OUTCAR.1", "INCAR", "sub/WAVECAR"):
        (run / name).write_text("x")
    (run / "link").symlink_to(tmp_path)  # a link to a directory: the link goes, not its target
    clean_dir(run, ["OUTCAR*"])
    assert sorted(p.name for p in run.iterdir()) == ["OUTCAR", "OUTCAR.1"]
    assert tmp_path.is_dir()
    clean_dir(run, True)
    assert len(list(run.iterdir())) == 2
    clean_dir(run, None)
    assert not run.exists()


def test_clean_dir_missing_directory_and_string_patterns(tmp_path):
    clean_dir(tmp_path / "nothing", False)  # nothing to do
    with pytest.raises(FileNotFoundError, match="no directory"):
        clean_dir(tmp_path / "nothing", False, force=True)
    with pytest.raises(ValueError, match=r"give a list of patterns, e.g. \['OUTCAR'\]"):
        clean_dir(tmp_path, "OUTCAR")
    assert tmp_path.is_dir()


def test_wfl_version_is_the_checkout_or_the_installed_version():
    import wfl

    version = get_wfl_version()
    assert version.startswith("git ") or version == wfl.__version__
