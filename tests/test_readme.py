"""Every snippet of the README and of ``docs/*.md`` that a user can run is run here, read from the page itself.

THE RULE for code blocks of these pages (follow it when you add a snippet):

- A fenced block tagged ``bash`` or ``python`` is RUN, in page order, in one shared
  working directory per page (a "session": a fresh empty directory with a private ``HOME``,
  no ``EXPYRE_*``/``WFL_*`` variables set, this venv first on ``PATH``, and ``structures.xyz``
  holding 4 perturbed fcc cells). It must exit 0. Later blocks see the files and jobs of
  earlier ones.
- A fenced block tagged ``json`` must parse as written; if it has a top-level ``"systems"``,
  each system must be a valid expyre ``config.json`` system. A README ``json`` block with
  ``replace`` directives is a cluster example: with the replacements (and the tokens below)
  applied it must be valid too, and each of its systems must pass ``xpr check`` against the
  live systems of the test config (``--runremote``).
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
      never silently stop applying. NEW may contain the tokens ``@VENV_BIN@`` (this venv's
      ``bin``), ``@NPROC@`` (this machine's cores) and ``@RUNDIR@`` (a fresh directory).

What the snippets promise is checked after the session: the workflow ran as queued jobs and
the job received the ``env_vars`` value with spaces, quotes and braces intact.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
PAGES = [README, *sorted((REPO / "docs").glob("*.md"))]
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
    assert isinstance(old, str) and isinstance(new, str), f"line {line}: {text!r}"
    return old, new


def prepared(block: Block) -> tuple[str, str | None, str | None]:
    """(text after replacements, file name or None, skip reason or None)."""
    text, file_name, skip = block.text, None, None
    for directive in block.directives:
        kind, _, rest = directive.partition(" ")
        if kind == "skip:":
            assert rest.strip(), f"line {block.line}: skip needs a reason"
            skip = rest.strip()
        elif kind == "file":
            file_name = rest.strip()
        elif kind == "replace":
            old, new = _two_json_strings(rest, block.line)
            assert old in text, f"line {block.line}: {old!r} not in the block"
            text = text.replace(old, new)
        else:
            raise AssertionError(f"line {block.line}: unknown readme-test {directive!r}")
    return text, file_name, skip


def with_tokens(text: str, rundir: Path | None = None) -> str:
    """Put this machine's values for the tokens a replacement may use."""
    text = text.replace("@VENV_BIN@", str(Path(sys.executable).parent))
    text = text.replace("@NPROC@", str(os.cpu_count() or 1))
    return text.replace("@RUNDIR@", str(rundir or "/tmp/expyre-readme-rundir"))


def _page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_readme_directives_are_understood(page):
    blocks = readme_blocks(page.read_text())
    if page == README:
        assert sum(b.lang in RUNNABLE for b in blocks) >= 4
    for block in blocks:
        prepared(block)  # raises on unknown directives, skips without reason, dead replacements


def test_docs_pages_are_linked_from_the_readme():
    readme = README.read_text()
    for page in PAGES[1:]:
        if page.suffix == ".md":
            assert f"({_page_id(page)}" in readme, f"README links nowhere to {_page_id(page)}"


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to '-'."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", page.read_text(), flags=re.M | re.S)  # not in code
    return {github_anchor(h) for h in re.findall(r"^#+ (.+)$", text, flags=re.M)}


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_links_between_pages_resolve(page):
    """Every relative link of a page names an existing file, and its #anchor a heading there."""
    links = re.findall(r"\]\(([^)\s]+)\)", page.read_text())
    for link in links:
        if re.match(r"[a-z]+:", link):
            continue  # an absolute URL
        target, _, anchor = link.partition("#")
        path = (page.parent / target).resolve() if target else page
        assert path.exists(), f"{_page_id(page)}: link {link!r}: no file {path}"
        if anchor:
            assert anchor in _anchors(path), f"{_page_id(page)}: link {link!r}: no such heading"


def test_readme_json_blocks_are_valid():
    from expyre.config import parse_system

    checked = 0
    for page in PAGES:
        for block in (b for b in readme_blocks(page.read_text()) if b.lang == "json"):
            texts = {"as written": block.text, "as tested": with_tokens(prepared(block)[0])}
            for how, text in texts.items():
                data = json.loads(text)
                for name, raw in data.get("systems", {}).items():
                    parse_system(name, raw, f"{_page_id(page)} line {block.line} ({how})")
                    checked += 1
    assert checked >= 4  # the local example, the Slurm and the SGE cluster, each twice


def _session(tmp_path: Path) -> tuple[Path, dict]:
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


def _run_page(page: Path, work: Path, env: dict, after_block=None) -> list[int]:
    ran = []
    for block in readme_blocks(page.read_text()):
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
            f"{_page_id(page)} block at line {block.line} failed:\n{text}\n--- stdout\n"
            f"{done.stdout[-3000:]}\n--- stderr\n{done.stderr[-3000:]}"
        )
        ran.append(block.line)
        if after_block is not None:
            after_block(text, done)
    return ran


def test_readme_snippets_run(tmp_path):
    work, env = _session(tmp_path)
    checked = []

    def after_block(text, done):
        if "python3 relax_emt.py" in text:
            _check_first_run(work, done.stdout)
            checked.append("first run")
        if "python3 do_workflow.py" in text:
            # before the xpr block, whose `xpr rm` deletes the job directories
            _check_queued_workflow(work, work / "_expyre")
            checked.append("cluster workflow")

    ran = _run_page(README, work, env, after_block)
    assert len(ran) >= 4 and checked == ["first run", "cluster workflow"]


def _runnable_docs_pages() -> list[Path]:
    pages = []
    for page in PAGES[1:]:
        blocks = readme_blocks(page.read_text())
        if any(b.lang in RUNNABLE and not prepared(b)[2] for b in blocks):
            pages.append(page)
    return pages


def _page_id_or_none(page: Path | None) -> str:
    return "none" if page is None else _page_id(page)


@pytest.mark.parametrize("page", _runnable_docs_pages() or [None], ids=_page_id_or_none)
def test_docs_snippets_run(tmp_path, page):
    if page is None:
        pytest.skip("no docs/*.md page has a block to run")
    work, env = _session(tmp_path)
    assert _run_page(page, work, env)


def _check_first_run(work: Path, stdout: str) -> None:
    """The first run relaxed the 2 structures as 2 local-queue jobs; the rerun skipped."""
    from ase.io import read

    relaxed = read(work / "relaxed_emt.xyz", ":")
    assert len(relaxed) == 2 and all(at.info["optimize_converged"] for at in relaxed)
    assert "2 job(s): 2 processed" in stdout, stdout
    assert stdout.count("True") == 4  # each structure printed by the run and by the rerun


def _check_queued_workflow(work: Path, project: Path) -> None:
    """The relaxations ran as local-queue jobs, which got the env_vars value intact."""
    from ase.io import read

    relaxed = read(work / "relaxed.structures.xyz", ":")
    assert len(relaxed) == 2 and all(at.info["optimize_converged"] for at in relaxed)
    scripts = [s for s in project.rglob("*.sh") if "vasp_minim" in str(s)]
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


# ------------------------------------------------------------ the cluster examples, live


def _test_config_systems() -> dict:
    """Systems of the remote tests' config (as tests/remote/conftest.py reads it), filtered."""
    custom = os.environ.get("EXPYRE_PYTEST_CONFIG_DIR")
    if custom:
        path = Path(custom) / "config.json" if Path(custom).is_dir() else Path(custom)
    else:
        path = Path(os.environ.get("HOME") or os.path.expanduser("~")) / ".expyre/config.json"
    try:
        systems = json.loads(path.read_text()).get("systems", {})
    except (OSError, ValueError):
        return {}
    pattern = re.compile(os.environ.get("EXPYRE_PYTEST_SYSTEMS", ".*"))
    return {name: s for name, s in systems.items() if pattern.search(name)}


def _cluster_examples() -> list:
    """(README line, system name, system dict as tested) of every cluster example."""
    examples = []
    for block in readme_blocks(README.read_text()):
        if block.lang == "json" and any(d.startswith("replace") for d in block.directives):
            for name in json.loads(block.text).get("systems", {}):
                examples.append(pytest.param(block, name, id=f"line{block.line}-{name}"))
    return examples


@pytest.mark.remote
@pytest.mark.parametrize("block,name", _cluster_examples())
def test_readme_cluster_example_passes_xpr_check(tmp_path, block, name):
    """The README's config.json for a cluster, with this machine's host, paths and cores put
    in, is a working system: `xpr check` submits, runs and collects a job on the live queue."""
    rundir = tmp_path / "rundir"
    system = json.loads(with_tokens(prepared(block)[0], rundir))["systems"][name]
    # the live system this example stands for: same scheduler, and over ssh iff it has a host
    live = [
        n
        for n, s in _test_config_systems().items()
        if s.get("scheduler") == system["scheduler"]
        and bool(s.get("host")) == bool(system.get("host"))
    ]
    if not live:
        pytest.skip(
            f"no {system['scheduler']} system {'over ssh ' if system.get('host') else ''}"
            "selected in the test config (EXPYRE_PYTEST_SYSTEMS)"
        )
    if system.get("host"):
        assert system["host"] in {_test_config_systems()[n]["host"] for n in live}
    project = tmp_path / "proj"
    (project / "_expyre").mkdir(parents=True)
    (project / "_expyre" / "config.json").write_text(json.dumps({"systems": {name: system}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EXPYRE_", "WFL_"))}
    env.update(HOME=str(tmp_path), EXPYRE_DIED_GRACE="10")
    env["EXPYRE_LOCAL_CORES_DIR"] = os.environ["EXPYRE_LOCAL_CORES_DIR"]
    xpr = shutil.which("xpr", path=str(Path(sys.executable).parent))
    done = subprocess.run(
        [xpr, "check", name, "--timeout", "600"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{name}: ready for jobs" in done.stdout
    assert "tiny job (submit, run, collect): job" in done.stdout
