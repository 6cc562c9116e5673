"""``xpr check SYSTEM`` on the local queue: every step passes, or the failing one says the fix."""

import re
import shlex
import sys

from click.testing import CliRunner
from expyre_testutil import local_system, write_config

from expyre.cli import cli
from expyre.func import jobs_db


def _check(*args):
    return CliRunner().invoke(cli, ["check", *args], catch_exceptions=False)


def test_check_passes_on_a_working_system_and_leaves_nothing(project):
    write_config(project, {"mylocal": local_system()})
    result = _check("mylocal")
    assert result.exit_code == 0, result.output
    steps = re.findall(r"^\[ ok \]\s+\d+\.\d\d s  (.+?)(?::|$)", result.output, re.M)
    assert len(steps) == 6, result.output
    assert "tiny job (submit, run, collect)" in steps
    assert "mylocal: ready for jobs" in result.output
    assert jobs_db().select() == []  # the test job was removed with its directory
    assert not any((project / "stage").iterdir())


def test_check_stops_at_the_first_failure_with_its_fix(project):
    broken = local_system(python_cmd=shlex.quote(sys.executable + "-missing"))
    write_config(project, {"broken": broken})
    result = _check("broken")
    assert result.exit_code == 1
    assert "[FAIL]" in result.output and "preflight" in result.output.split("[FAIL]")[1]
    assert "fix:" in result.output and "python_cmd" in result.output
    assert "tiny job" not in result.output  # later steps need the earlier ones
    unknown = _check("nowhere")
    assert unknown.exit_code == 1 and "is not defined" in unknown.output
    assert "fix: add the system to config.json" in unknown.output
