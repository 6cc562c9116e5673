"""The README's install commands work from a clean clone, and leave ``xpr`` on the PATH.

In a fresh clone of this repository's committed HEAD (so a file the install needs but git
does not track fails here), with a shell that has no venv active: the block under "By hand,
in a virtual environment" is run as written; then ``make demo`` (which reuses that venv and
adds the test extras), and the README's block for after ``make demo``, followed by
``xpr ls`` in the demo's directory, which must list the demo's 4 jobs. Slow: it installs
the package and its dependencies into a new venv (from pip's cache when warm) and runs the
demo.
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from test_readme import README, readme_blocks

REPO = Path(__file__).resolve().parents[1]


def _bash_blocks(heading: str) -> list[str]:
    section = README.read_text().split(heading, 1)[1].split("\n#", 1)[0]
    return [b.text for b in readme_blocks(section) if b.lang == "bash"]


def _install_block() -> str:
    blocks = _bash_blocks("### By hand, in a virtual environment")
    assert len(blocks) == 1, "the By hand section should hold one bash block"
    return blocks[0]


def _after_demo_block() -> str:
    blocks = _bash_blocks("### The two commands")
    assert len(blocks) == 2 and "make demo" in blocks[0], (
        "expected the two commands, then one block"
    )
    assert "xpr" in blocks[1]
    return blocks[1]


@pytest.mark.slow
def test_install_and_demo_from_a_clean_clone_put_xpr_on_the_path(tmp_path):
    if shutil.which("git") is None:
        pytest.fail("git is needed to clone the repository")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = ":".join(
        p for p in env["PATH"].split(":") if not p.startswith(str(REPO)) and "/.venv" not in p
    )
    env["HOME"] = str(tmp_path)
    block = _install_block()
    done = subprocess.run(
        ["bash", "-e", "-c", block + "\ncommand -v xpr\n"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == str(clone / ".venv" / "bin" / "xpr")
    version = re.search(r"xpr, version (\S+)", done.stdout)
    assert version, done.stdout
    # the version the README's comment promises is the one installed
    assert f"# xpr, version {version.group(1)}" in block

    # `make demo`, then what the README says to do to use xpr afterwards
    demo = subprocess.run(
        ["bash", "-e", "-c", f"make demo\n{_after_demo_block()}\ncd demo-run && xpr ls\n"],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "source" in demo.stdout and ".venv/bin/activate" in demo.stdout  # the demo says how
    assert demo.stdout.count("4 job(s): 4 processed") == 2  # the demo's own xpr ls, and ours
