"""A finished fit is reused only when made by the same code: editing the fit function (or
what it calls) invalidates it, as for an operation's outputs."""

import importlib
import sys
import textwrap

import pytest

from wfl.fit.tasks import FitTask, read_record, run_fit_tasks

FIT_MODULE = """
    import time
    from pathlib import Path

    from wfl.fit.tasks import collect_outputs


    def fake_fit(label):
        # stands in for gap_fit/pacemaker: writes a potential file in its fresh directory
        Path("pot.xml").write_text(f"<potential label={label!r} version=VERSION/>")
        return collect_outputs(Path.cwd(), ["pot.xml"], time.time())
"""


def _fit_module(tmp_path, version):
    """(Re)write and import the module holding the fit function, as a user's script would."""
    # the edit is in the fit function's body, as when someone changes how a fit runs
    source = textwrap.dedent(FIT_MODULE).replace("VERSION", version)
    (tmp_path / "my_fit_code.py").write_text(source)
    sys.modules.pop("my_fit_code", None)
    importlib.invalidate_caches()
    return importlib.import_module("my_fit_code")


def _task(module, out):
    return FitTask(
        name="fake", function=module.fake_fit, args=("a",), kwargs={}, output_path=out,
        digest="same-parameters-and-configs",
    )  # fmt: skip


def test_editing_the_fit_code_invalidates_a_finished_fit(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    out = tmp_path / "fits" / "pot.xml"
    first = _fit_module(tmp_path, "original")
    run_fit_tasks([_task(first, out)])
    assert "original" in out.read_text()
    assert read_record(out)["code"] == _task(first, out).code

    out.write_text("marker: reused, not refitted")
    run_fit_tasks([_task(first, out)])  # same code: skipped
    assert out.read_text() == "marker: reused, not refitted"

    edited = _fit_module(tmp_path, "edited")
    assert _task(edited, out).code != _task(first, out).code
    with pytest.raises(ValueError, match="different code"):
        run_fit_tasks([_task(edited, out)])
    assert out.read_text() == "marker: reused, not refitted"  # nothing lost
    run_fit_tasks([_task(edited, out)], overwrite=True)
    assert "edited" in out.read_text()
    assert read_record(out)["code"] == _task(edited, out).code
