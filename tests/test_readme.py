"""Every snippet of the README that a user can run is run here, read from the README itself.

THE RULE for README code blocks (follow it when you add a snippet):

- A fenced block tagged ``bash`` or ``python`` is RUN, in README order, in one shared
  working directory (a "session": a fresh empty directory with a private ``HOME``, no
  ``EXPYRE_*``/``WFL_*`` variables set, this venv first on ``PATH``, and ``structures.xyz``
  holding 4 perturbed fcc cells, the input the Usage section assumes). It must exit 0.
  Later blocks see the files and jobs of earlier ones.
- A fenced block tagged ``json`` must parse; if it has a top-level ``"systems"``, each system
  must be a valid expyre ``config.json`` system.
- Blocks without a language tag (diagrams, listings) are not code and are not run.
- HTML comments directly above a block (nothing but blank lines in between) change that:

  ``<!-- readme-test: skip: REASON -->``
      do not run it; the reason is required and should name where it is tested instead
      (e.g. a cluster-only step, or ``make test`` itself).
  ``<!-- readme-test: file NAME -->``
      write the block to the file NAME in the session instead of running it (a script that
      a later block runs).
  ``<!-- readme-test: replace "OLD" "NEW" -->``
      before using the block, replace the text OLD by NEW (JSON string syntax for both).
      This is how a block that needs a cluster or VASP runs here: with ``local`` for
      ``mycluster`` and EMT for VASP. OLD must occur in the block, so a replacement can
      never silently stop applying.

What the snippets promise is checked after the session: the workflow ran as queued jobs and
the job received the ``env_vars`` value with spaces, quotes and braces intact.
"""

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
RUNNABLE = ("bash", "python")
_FENCE = re.compile(r"^```([A-Za-z0-9_+-]*)\s*$")
_DIRECTIVE = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    directives: list[str] = field(default_factory=list)


def readme_blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown text with the readme-test directives above each."""
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = _FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        directives = []
        j = i - 1
        while j >= 0 and (not lines[j].strip() or _DIRECTIVE.match(lines[j])):
            if lines[j].strip():
                directives.insert(0, _DIRECTIVE.match(lines[j]).group(1))
            j -= 1
        end = next(k for k in range(i + 1, len(lines)) if lines[k].startswith("```"))
        blocks.append(
            Block(i + 1, fence.group(1), "\n".join(lines[i + 1 : end]) + "\n", directives)
        )
        i = end + 1
    return blocks


def _two_json_strings(text: str, line: int) -> tuple[str, str]:
    decoder = json.JSONDecoder()
    old, end = decoder.raw_decode(text.strip())
    new, rest_end = decoder.raw_decode(text.strip()[end:].lstrip())
    assert isinstance(old, str) and isinstance(new, str), f"README line {line}: {text!r}"
    return old, new


def prepared(block: Block) -> tuple[str, str | None, str | None]:
    """(text after replacements, file name or None, skip reason or None)."""
    text, file_name, skip = block.text, None, None
    for directive in block.directives:
        kind, _, rest = directive.partition(" ")
        if kind == "skip:":
            assert rest.strip(), f"README line {block.line}: skip needs a reason"
            skip = rest.strip()
        elif kind == "file":
            file_name = rest.strip()
        elif kind == "replace":
            old, new = _two_json_strings(rest, block.line)
            assert old in text, f"README line {block.line}: {old!r} not in the block"
            text = text.replace(old, new)
        else:
            raise AssertionError(f"README line {block.line}: unknown readme-test {directive!r}")
    return text, file_name, skip


def test_readme_directives_are_understood():
    blocks = readme_blocks(README.read_text())
    assert sum(b.lang in RUNNABLE for b in blocks) >= 4
    for block in blocks:
        prepared(block)  # raises on unknown directives, skips without reason, dead replacements


def test_readme_json_blocks_are_valid():
    from expyre.config import parse_system

    blocks = [b for b in readme_blocks(README.read_text()) if b.lang == "json"]
    assert blocks
    for block in blocks:
        data = json.loads(prepared(block)[0])
        for name, raw in data.get("systems", {}).items():
            parse_system(name, raw, f"README line {block.line}")


@pytest.fixture
def session(tmp_path):
    from ase.build import bulk
    from ase.io import write

    work = tmp_path / "session"
    (tmp_path / "home").mkdir()
    work.mkdir()
    cells = []
    for i in range(4):
        at = bulk("Cu", "fcc", a=3.61, cubic=True)
        at.rattle(stdev=0.05, seed=i)
        cells.append(at)
    write(work / "structures.xyz", cells)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXPYRE_", "WFL_"))}
    env.update(HOME=str(tmp_path / "home"), PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
    env["EXPYRE_LOCAL_CORES_DIR"] = os.environ["EXPYRE_LOCAL_CORES_DIR"]  # this test's own cores
    return work, env


def test_readme_snippets_run(session):
    work, env = session
    ran, checked = [], False
    for block in readme_blocks(README.read_text()):
        if block.lang not in RUNNABLE:
            continue
        text, file_name, skip = prepared(block)
        if skip:
            continue
        if file_name:
            (work / file_name).parent.mkdir(parents=True, exist_ok=True)
            (work / file_name).write_text(text)
            continue
        argv = ["bash", "-e", "-c", text] if block.lang == "bash" else [sys.executable, "-c", text]
        done = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=900)
        assert done.returncode == 0, (
            f"README block at line {block.line} failed:\n{text}\n--- stdout\n{done.stdout[-3000:]}"
            f"\n--- stderr\n{done.stderr[-3000:]}"
        )
        ran.append(block.line)
        if "python3 do_workflow.py" in text:
            # before the xpr block, whose `xpr rm` deletes the job directories
            _check_queued_workflow(work, Path(env["HOME"]) / ".expyre")
            checked = True
    assert len(ran) >= 2 and checked


def _check_queued_workflow(work: Path, project: Path) -> None:
    """The relaxations ran as local-queue jobs, which got the env_vars value intact."""
    from ase.io import read

    relaxed = read(work / "relaxed.structures.xyz", ":")
    assert len(relaxed) == 4 and all(at.info["optimize_converged"] for at in relaxed)
    scripts = list(project.rglob("*.sh"))
    assert scripts, f"no job scripts under {project}: the workflow did not run as queued jobs"
    for script in scripts:
        export = next(
            line for line in script.read_text().splitlines() if "WFL_VASP_KWARGS=" in line
        )
        shown = subprocess.run(
            ["bash", "-c", f'EXPYRE_NCORES_PER_NODE=2; {export}; printf %s "$WFL_VASP_KWARGS"'],
            capture_output=True,
            text=True,
            check=True,
        )
        assert shown.stdout == '{"ncore": 2}'
    for log in project.rglob("*std*"):
        assert "not a valid identifier" not in log.read_text(errors="replace"), log
