"""The README's install commands work from a clean clone, and leave ``xpr`` on the PATH.

In a fresh clone of this repository's committed HEAD (so a file the install needs but git
does not track fails here), with a shell that has no venv active: the block under "By hand,
in a virtual environment" is run as written; then ``make demo`` (which reuses that venv and
adds the test extras), and the README's block for after ``make demo``, followed by
``xpr ls`` in the demo's directory, which must list the demo's 4 jobs. Slow: it installs
the package and its dependencies into a new venv (from pip's cache when warm) and runs the
demo.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_readme import README, _test_config_systems, readme_blocks

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


def _env_without_this_venv(home: Path, *, drop_prefixes: tuple[str, ...] = ()) -> dict:
    """This process's environment as a fresh login shell has it: no venv active, none of
    this repository's directories on PATH, HOME = ``home``, no variables starting with
    ``drop_prefixes``."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env = {k: v for k, v in env.items() if not (drop_prefixes and k.startswith(drop_prefixes))}
    env["PATH"] = ":".join(
        p for p in env["PATH"].split(":") if not p.startswith(str(REPO)) and "/.venv" not in p
    )
    env["HOME"] = str(home)
    return env


def _bash(script: str, cwd: Path, env: dict) -> subprocess.CompletedProcess:
    """Run ``script`` with ``bash -e`` (stop at the first failing line), output captured."""
    return subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )


@pytest.mark.slow
def test_install_and_demo_from_a_clean_clone_put_xpr_on_the_path(tmp_path):
    if shutil.which("git") is None:
        pytest.fail("git is needed to clone the repository")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True)
    env = _env_without_this_venv(tmp_path)
    block = _install_block()
    done = _bash(block + "\ncommand -v xpr\n", clone, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == str(clone / ".venv" / "bin" / "xpr")
    version = re.search(r"xpr, version (\S+)", done.stdout)
    assert version, done.stdout
    # the version the README's comment promises is the one installed
    assert f"# xpr, version {version.group(1)}" in block

    # `make demo`, then what the README says to do to use xpr afterwards
    demo = _bash(f"make demo\n{_after_demo_block()}\ncd demo-run && xpr ls\n", clone, env)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    assert "source" in demo.stdout and ".venv/bin/activate" in demo.stdout  # the demo says how
    assert demo.stdout.count("4 job(s): 4 processed") == 2  # the demo's own xpr ls, and ours


def _cluster_block() -> str:
    blocks = _bash_blocks("### On the cluster: the same code, in a venv there")
    assert len(blocks) == 1, "the cluster install section should hold one bash block"
    return blocks[0]


@pytest.mark.slow
@pytest.mark.remote
def test_cluster_install_gives_a_python_that_runs_jobs(tmp_path):
    """The README's install on the cluster, run here with a home of its own, makes a venv
    whose python passes `xpr check` (preflight versions and a tiny job on the live Slurm)
    for a system whose `commands` activate it, as the README's config.json examples do."""
    slurm = [s for s in _test_config_systems().values() if s.get("scheduler") == "slurm"]
    slurm = [s for s in slurm if not s.get("host")]
    if not slurm:
        pytest.skip("no Slurm system on this machine selected in the test config")
    home = tmp_path / "home"
    home.mkdir()
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    block = _cluster_block()
    for old, new in (("/path/or/url/of/this/repository", str(REPO)), ("COMMIT", commit)):
        assert old in block
        block = block.replace(old, new)
    env = _env_without_this_venv(home, drop_prefixes=("EXPYRE_", "WFL_"))
    # a stand-in for environment modules, which this machine does not have: `module load`
    # does nothing here, where python3 is already the one the README asks for
    stand_in = "module() { :; }\n"
    done = _bash(stand_in + block, tmp_path, env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    import expyre
    import wfl

    assert done.stdout.strip().splitlines()[-1] == f"{expyre.__version__} {wfl.__version__}"
    # without the venv, this machine's python3 cannot run jobs: a passing check below means
    # the system's "commands" put the venv's python first
    bare = subprocess.run(["python3", "-c", "import expyre"], env=env, capture_output=True)
    assert bare.returncode != 0

    project = tmp_path / "proj"
    (project / "_expyre").mkdir(parents=True)
    system = {
        "scheduler": "slurm",  # its jobs inherit this HOME, where the venv is
        "commands": ["source ~/venvs/wfl/bin/activate"],
        "python_cmd": "python3",  # what a remote host gets by default
        "partitions": slurm[0]["partitions"],
    }
    (project / "_expyre" / "config.json").write_text(json.dumps({"systems": {"mycluster": system}}))
    xpr = str(Path(sys.executable).parent / "xpr")  # the driver's, from the repository's venv
    check = subprocess.run(
        [xpr, "check", "mycluster"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "mycluster: ready for jobs" in check.stdout
