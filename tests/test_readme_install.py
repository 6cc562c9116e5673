"""The README's install by hand works from a clean clone, and leaves ``xpr`` on the PATH.

The block under "By hand, in a virtual environment" is run as written, in a fresh clone of
this repository's committed HEAD (so a file the install needs but git does not track fails
here), with a shell that has no venv active. Slow: it installs the package and its
dependencies into a new venv (from pip's cache when warm).
"""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from test_readme import README, readme_blocks

REPO = Path(__file__).resolve().parents[1]


def _install_block() -> str:
    text = README.read_text()
    section = text.split("### By hand, in a virtual environment", 1)[1].split("\n#", 1)[0]
    blocks = [b for b in readme_blocks(section) if b.lang == "bash"]
    assert len(blocks) == 1, "the By hand section should hold one bash block"
    return blocks[0].text


@pytest.mark.slow
def test_install_by_hand_from_a_clean_clone_puts_xpr_on_the_path(tmp_path):
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
