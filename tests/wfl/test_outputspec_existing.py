"""OutputSpec and existing files: refused without overwrite, yet reruns of finished work skip.

Storing into a file that exists is an error unless ``overwrite=True`` (as in wfl 0.3.5).
An autoparallelized operation decides before storing anything: finished by the same
operation -> skipped (no store, so no error); made by something else -> reused with a
warning (as wfl 0.3.5 did); made differently -> refused; an interrupted rename of this very
operation -> redone, replacing its own partial set.
"""

import threading

import ase.io
import pytest
from _wfl_testdata import perturbed_cu_cells

from wfl.configset import ConfigSet, OutputsExistError, OutputSpec
from wfl.map import map as wfl_map


def _mark(atoms):
    atoms = atoms.copy()
    atoms.info["marked"] = True
    return atoms


def test_store_into_existing_file_is_refused_and_changes_nothing(tmp_path):
    target = tmp_path / "out.xyz"
    ase.io.write(target, perturbed_cu_cells(2))
    before = target.read_text()
    outputs = OutputSpec(target)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        outputs.store(perturbed_cu_cells(1)[0], " / 0")
    assert target.read_text() == before
    assert not OutputSpec.partial_path(target).exists()
    # also a ValueError, the class this project uses for bad input
    assert issubclass(OutputsExistError, ValueError)


def test_close_without_stores_does_not_replace_existing_file(tmp_path):
    target = tmp_path / "out.xyz"
    ase.io.write(target, perturbed_cu_cells(1))
    with pytest.raises(FileExistsError):
        OutputSpec(target).close()
    assert len(ase.io.read(target, ":")) == 1


def test_overwrite_replaces(tmp_path):
    target = tmp_path / "out.xyz"
    ase.io.write(target, perturbed_cu_cells(3))
    outputs = OutputSpec(target, overwrite=True)
    outputs.store(perturbed_cu_cells(1)[0], " / 0")
    outputs.close()
    assert len(ase.io.read(target, ":")) == 1


def test_finished_operation_rerun_skips_without_error(tmp_path, capfd):
    inputs = perturbed_cu_cells(3)
    first = [at.info["id"] for at in wfl_map(inputs, OutputSpec(tmp_path / "o.xyz"), _mark)]
    capfd.readouterr()
    again = [at.info["id"] for at in wfl_map(inputs, OutputSpec(tmp_path / "o.xyz"), _mark)]
    assert again == first == [0, 1, 2]
    assert "skipped" in capfd.readouterr().err


def test_operation_interrupted_while_renaming_is_redone(tmp_path):
    c = perturbed_cu_cells(4)
    ase.io.write(tmp_path / "a.xyz", c[:2])
    ase.io.write(tmp_path / "b.xyz", c[2:])
    inputs = ConfigSet([tmp_path / "a.xyz", tmp_path / "b.xyz"])
    names = [tmp_path / "oa.xyz", tmp_path / "ob.xyz"]
    wfl_map(inputs, OutputSpec(names), _mark)
    # as if killed after renaming the first file: second file and its record missing
    names[1].unlink()
    OutputSpec.record_path(names[1]).unlink()
    result = wfl_map(inputs, OutputSpec(names), _mark)
    assert [at.info["id"] for at in result] == [0, 1, 2, 3]
    assert all(p.exists() and OutputSpec.record_path(p).exists() for p in names)


def test_some_foreign_output_files_are_refused_as_file_exists(tmp_path):
    c = perturbed_cu_cells(2)
    ase.io.write(tmp_path / "a.xyz", c[:1])
    ase.io.write(tmp_path / "b.xyz", c[1:])
    ase.io.write(tmp_path / "ob.xyz", c)
    with pytest.raises(FileExistsError, match="without a completion record"):
        wfl_map(
            ConfigSet([tmp_path / "a.xyz", tmp_path / "b.xyz"]),
            OutputSpec([tmp_path / "oa.xyz", tmp_path / "ob.xyz"]),
            _mark,
        )


def test_store_after_close(tmp_path):
    outputs = OutputSpec()
    outputs.store(perturbed_cu_cells(1)[0], " / 0")
    outputs.close()
    with pytest.raises(ValueError, match="after close"):
        outputs.store(perturbed_cu_cells(1)[0], " / 1")
    again = OutputSpec(tmp_path / "o.xyz", overwrite=True)
    again.store(perturbed_cu_cells(1)[0], " / 0")
    again.close()
    again.store(perturbed_cu_cells(2), " / 0")  # overwrite=True: a new output starts
    again.close()
    assert len(list(ConfigSet(tmp_path / "o.xyz"))) == 2


def test_store_numbers_results_without_locations_and_refuses_mixing(tmp_path):
    outputs = OutputSpec()
    outputs.store(perturbed_cu_cells(1)[0])
    outputs.store(perturbed_cu_cells(2))
    outputs.close()
    locs = [at.info["_ConfigSet_loc"] for at in outputs.to_ConfigSet()]
    assert locs == [" / 0", " / 1 / 0", " / 1 / 1"]
    mixed = OutputSpec()
    mixed.store(perturbed_cu_cells(1)[0], input_CS_loc=" / 0")
    with pytest.raises(RuntimeError, match="on every call .* or on none"):
        mixed.store(perturbed_cu_cells(1)[0])


def test_store_does_not_change_callers_atoms(tmp_path):
    mine = perturbed_cu_cells(1)[0]
    info_before = dict(mine.info)
    outputs = OutputSpec(tmp_path / "o.xyz", tags={"stage": "x"})
    outputs.store(mine, " / 3")
    outputs.close()
    assert mine.info == info_before
    (back,) = ConfigSet(tmp_path / "o.xyz")
    assert back.info["stage"] == "x" and back.info["_ConfigSet_loc"] == " / 3"


def test_write_stores_at_locations_then_reuses_when_done(tmp_path, capfd):
    source = ConfigSet([perturbed_cu_cells(1), perturbed_cu_cells(2)])
    OutputSpec(tmp_path / "o.xyz").write(source)
    locs = [at.info["_ConfigSet_loc"] for at in ConfigSet(tmp_path / "o.xyz")]
    assert locs == [" / 0 / 0", " / 1 / 0", " / 1 / 1"]
    capfd.readouterr()
    OutputSpec(tmp_path / "o.xyz").write(perturbed_cu_cells(5))
    assert "reusing existing" in capfd.readouterr().err
    assert len(list(ConfigSet(tmp_path / "o.xyz"))) == 3


def test_empty_output_file_reads_as_no_configs(tmp_path):
    outputs = OutputSpec(tmp_path / "none.xyz")
    outputs.close()
    assert list(outputs.to_ConfigSet()) == []


def test_files_of_the_same_operation_finished_meanwhile_are_replaced(tmp_path):
    """Two runs of one script at once: the second to finish finds the first one's files.

    They were made by the very operation the second run declares, complete, so storing
    replaces them (same results); files made by any other operation are still refused.
    """
    target = tmp_path / "out.xyz"
    key = {"operation": "op", "arguments": "a", "inputs": "i", "code": "c"}
    first = OutputSpec(target)
    first.store(perturbed_cu_cells(1)[0], " / 0")
    first.close(completion_record=key)

    second = OutputSpec(target)
    second.written_by(key)
    second.store(perturbed_cu_cells(1)[0], " / 0")
    second.close(completion_record=key)
    assert len(ase.io.read(target, ":")) == 1

    other = OutputSpec(target)
    other.written_by({**key, "code": "edited"})
    with pytest.raises(FileExistsError, match="overwrite=True"):
        other.store(perturbed_cu_cells(1)[0], " / 0")


def test_a_file_seen_between_the_other_runs_rename_and_its_record_is_waited_for(tmp_path):
    """The other run of the same script renames its file into place, then writes the record:
    a file seen in between is looked at again (briefly) instead of being refused."""
    target = tmp_path / "out.xyz"
    key = {"operation": "op", "arguments": "a", "inputs": "i", "code": "c"}
    first = OutputSpec(target)
    first.store(perturbed_cu_cells(1)[0], " / 0")
    first.close(completion_record=key)
    record = first.record_path(target)
    saved = record.read_text()
    record.unlink()  # the moment between the other run's rename and its record

    late_record = threading.Timer(0.3, record.write_text, args=(saved,))
    late_record.start()
    second = OutputSpec(target)
    second.written_by(key)
    second.store(perturbed_cu_cells(1)[0], " / 0")
    second.close(completion_record=key)
    late_record.join()
    assert len(ase.io.read(target, ":")) == 1

    # a file that stays without a record is someone else's: refused after the short wait
    record.unlink()
    third = OutputSpec(target)
    third.written_by(key)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        third.store(perturbed_cu_cells(1)[0], " / 0")
