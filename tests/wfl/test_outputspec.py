"""OutputSpec: memory / one file / several files round-trips, atomic close, records, tags."""

import json

import ase.io
import numpy as np
import pytest
from _wfl_testdata import perturbed_cu_cells

from wfl.configset import ConfigSet, OutputSpec
from wfl.map import map as wfl_map


def _shift(atoms, dx):
    atoms.positions[:, 0] += dx
    atoms.info["shifted"] = dx
    return atoms


def _ids(cs):
    return [at.info["id"] for at in cs]


def _store_all(outputs, inputs):
    for at in inputs:
        outputs.store(at.copy(), at.info["_ConfigSet_loc"])
    outputs.close()


def test_memory_round_trip_keeps_locations_and_order():
    inputs = ConfigSet(perturbed_cu_cells(3))
    outputs = OutputSpec()
    _store_all(outputs, inputs)
    assert outputs.all_written()
    out = outputs.to_ConfigSet()
    assert _ids(out) == [0, 1, 2]
    assert [a.info["_ConfigSet_loc"] for a in out] == [" / 0", " / 1", " / 2"]


def test_one_file_round_trip(tmp_path):
    configs = perturbed_cu_cells(3)
    outputs = OutputSpec("out.xyz", file_root=tmp_path)
    _store_all(outputs, ConfigSet(configs))
    back = list(outputs.to_ConfigSet())
    assert _ids(back) == [0, 1, 2]
    for orig, read in zip(configs, back, strict=True):
        assert np.allclose(orig.positions, read.positions, atol=1e-7)
    assert list(ConfigSet(tmp_path / "out.xyz")) != []


def test_several_files_map_one_to_one_onto_input_files(tmp_path):
    c = perturbed_cu_cells(5)
    ase.io.write(tmp_path / "a.xyz", c[:2])
    ase.io.write(tmp_path / "b.xyz", c[2:])
    inputs = ConfigSet(["a.xyz", "b.xyz"], file_root=tmp_path)
    outputs = OutputSpec(["a.out.xyz", "b.out.xyz"], file_root=tmp_path)
    result = wfl_map(inputs, outputs, _shift, args=[1.0])
    assert _ids(ConfigSet(tmp_path / "a.out.xyz")) == [0, 1]
    assert _ids(ConfigSet(tmp_path / "b.out.xyz")) == [2, 3, 4]
    assert [_ids(g) for g in result.groups()] == [[0, 1], [2, 3, 4]]
    shifted = [
        at.positions[:, 0] - orig.positions[:, 0] for at, orig in zip(result, c, strict=True)
    ]
    assert np.allclose(shifted, 1.0, atol=1e-7)


def test_several_files_with_unmappable_input_is_clear_error(tmp_path):
    outputs = OutputSpec(["x.xyz", "y.xyz"], file_root=tmp_path)
    with pytest.raises(ValueError, match="one output file per input file"):
        wfl_map(perturbed_cu_cells(3), outputs, _shift, args=[0.0])


def test_nested_memory_outputs_round_trip_through_file(tmp_path):
    # a list result is stored under its input's location
    outputs = OutputSpec()
    outputs.store(perturbed_cu_cells(2), " / 4")
    outputs.close()
    assert [a.info["_ConfigSet_loc"] for a in outputs.to_ConfigSet()] == [" / 4 / 0", " / 4 / 1"]
    file_out = OutputSpec(tmp_path / "nested.xyz")
    file_out.store(perturbed_cu_cells(2), " / 4")
    file_out.close()
    assert len(file_out.to_ConfigSet()) == 2


def test_interrupted_write_leaves_no_finished_looking_file(tmp_path):
    outputs = OutputSpec("out.xyz", file_root=tmp_path)
    for at in ConfigSet(perturbed_cu_cells(2)):
        outputs.store(at, at.info["_ConfigSet_loc"])
    # no close(): as if the script died here
    assert not (tmp_path / "out.xyz").exists()
    assert not outputs.all_written()
    assert OutputSpec.partial_path(tmp_path / "out.xyz").exists()
    # a fresh run starts the partial file afresh and finishes properly
    again = OutputSpec("out.xyz", file_root=tmp_path)
    _store_all(again, ConfigSet(perturbed_cu_cells(3)))
    assert len(ConfigSet(tmp_path / "out.xyz")) == 3
    assert not OutputSpec.partial_path(tmp_path / "out.xyz").exists()


def test_close_writes_completion_record_and_empty_files(tmp_path):
    outputs = OutputSpec(["a.xyz", "b.xyz"], file_root=tmp_path)
    outputs.store(perturbed_cu_cells(1)[0], " / 0 / 0")
    outputs.close(completion_record={"operation": "op", "arguments": "x"})
    assert (tmp_path / "b.xyz").exists() and (tmp_path / "b.xyz").stat().st_size == 0
    record = json.loads(OutputSpec.record_path(tmp_path / "a.xyz").read_text())
    assert record["operation"] == "op" and record["n_configs"] == 1
    assert outputs.read_records()[tmp_path / "b.xyz"]["n_configs"] == 0


def test_tags_and_write_kwargs(tmp_path):
    outputs = OutputSpec(
        "out.extxyz",
        file_root=tmp_path,
        tags={"stage": "relaxed"},
        write_kwargs={"columns": ["symbols", "positions"]},
    )
    _store_all(outputs, ConfigSet(perturbed_cu_cells(2)))
    back = list(ConfigSet(tmp_path / "out.extxyz"))
    assert [a.info["stage"] for a in back] == ["relaxed", "relaxed"]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda p: OutputSpec(str(p / "x.xyz"), file_root=p), "absolute path"),
        (lambda p: OutputSpec([]), "empty list"),
    ],
)
def test_bad_outputspec_is_clear_error(tmp_path, make, match):
    with pytest.raises(ValueError, match=match):
        make(tmp_path)


def test_temporary_files_of_dead_writers_are_removed_and_live_ones_kept(tmp_path):
    import os
    import subprocess
    import sys

    # a temporary file of a killed run (its process is gone), one of an older expyre-wfl,
    # and one of a live writer (another driver of the same script, still running)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    abandoned = tmp_path / f".out.xyz.partial.{dead}"
    legacy = tmp_path / ".out.xyz.partial"
    live = tmp_path / f".out.xyz.partial.{os.getppid()}"
    for path in (abandoned, legacy, live):
        path.write_text("half a file")
    outputs = OutputSpec("out.xyz", file_root=tmp_path)
    _store_all(outputs, ConfigSet(perturbed_cu_cells(3)))
    assert len(ase.io.read(tmp_path / "out.xyz", ":")) == 3
    assert not abandoned.exists() and not legacy.exists()
    assert live.read_text() == "half a file"  # never touched: the other driver renames it
