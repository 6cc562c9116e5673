"""The README's reference parts name what the code has: no variable, argument or placeholder
the code reads is left out, and none the code no longer reads is kept.

Each list is taken from the code itself (the string constants of ``src/``, the signature of
``RemoteInfo``, the header fields the job script is formatted with), so adding a variable or
an argument without documenting it fails here.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
DOCS = README + "".join(p.read_text() for p in sorted((REPO / "docs").glob("*.md")))

# Read by the code, but not for users to set, with the reason.
_INTERNAL = {
    "EXPYRE_CHANGE_MARKER": "set by the local queue in its own jobs, so an allocation can signal it",
    "EXPYRE_REMOTE_JOB_FAILED": "an info key on failed items, not a variable (README: RemoteInfo)",
}


def _code_variables() -> set[str]:
    """Every string constant of src/ that is a WFL_* or EXPYRE_* name."""
    names = set()
    for path in (REPO / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"(WFL|EXPYRE)_[A-Z0-9_]+", node.value)
            ):
                names.add(node.value)
    assert len(names) > 15  # the scan found the variables at all
    return names


def test_every_variable_the_code_reads_is_documented():
    missing = sorted(n for n in _code_variables() - set(_INTERNAL) if f"`{n}`" not in DOCS)
    assert not missing, f"not in README.md or docs/*.md: {missing}"


def test_every_variable_in_the_readme_table_is_read_by_the_code():
    table = README.split("### Environment variables", 1)[1].split("\n#", 1)[0]
    documented = set(re.findall(r"`((?:WFL|EXPYRE)_[A-Z0-9_]+)`", table))
    assert documented, "no variables found in the README's table"
    stale = sorted(documented - _code_variables())
    assert not stale, f"the README's table names variables the code never reads: {stale}"


def test_readme_remoteinfo_signature_is_the_code_s():
    from wfl.autoparallelize.remoteinfo import RemoteInfo

    written = re.search(r"`RemoteInfo\((sys_name.*?)\)`", README, flags=re.S).group(1)
    written_params = [p.split("=")[0].strip() for p in re.split(r",\s*", written)]
    code_params = [p for p in inspect.signature(RemoteInfo).parameters if p != "self"]
    assert written_params == code_params
    # a dataclass field's default may be a factory (a fresh list per RemoteInfo): the
    # README shows the value the factory makes
    factories = {
        field.name: field.default_factory
        for field in dataclasses.fields(RemoteInfo)
        if field.default_factory is not dataclasses.MISSING
    }
    for param in inspect.signature(RemoteInfo).parameters.values():
        if param.default is not inspect.Parameter.empty:
            value = factories[param.name]() if param.name in factories else param.default
            default = "[]" if value in ((), []) else repr(value)
            assert f"{param.name}={default}" in written, (param.name, value)


def test_readme_header_placeholders_are_the_job_script_s():
    from expyre.config import PartitionConfig, SystemConfig
    from expyre.jobscript import build_job_script
    from expyre.resources import Resources
    from expyre.schedulers.slurm import SlurmScheduler

    table = README.split("**Header placeholders.**", 1)[1].split("\n\n", 2)[1]
    documented = set(re.findall(r"^\| `\{(\w+)\}` \|", table, flags=re.M))
    system = SystemConfig(
        "s", None, "slurm", {"p": PartitionConfig("p", 4)}, header=["#SBATCH --x={unknown}"]
    )
    with pytest.raises(ValueError) as error:
        build_job_script(
            system,
            SlurmScheduler(),
            job_id="j",
            job_dir="/tmp/j",
            resources=Resources(max_time=60, num_nodes=1),
        )
    offered = set(
        re.search(r"fields available are \[(.*?)\]", str(error.value)).group(1).split(", ")
    )
    assert documented == {f.strip("'") for f in offered}


# Named in the README because they do NOT exist here (differences from wfl 0.3.5 and
# expyre-wfl 0.1.6: "What is not there").
_NAMED_AS_ABSENT = {
    "expyre.subprocess",
    "expyre.util",
    "wfl.autoparallelize.utils",
    "wfl.cli",
    "wfl.descriptors",
    "wfl.fit.mace",
}


def _dotted_names(text: str) -> set[str]:
    """``expyre.x.y`` / ``wfl.x.y`` names in a text; ``a.{b,c}`` gives ``a.b`` and ``a.c``."""
    names = set()
    for match in re.finditer(r"\b((?:expyre|wfl)(?:\.(?:[A-Za-z_]\w*|\{[\w,]+\}))+)", text):
        name = match.group(1)
        braces = re.search(r"\{([\w,]+)\}", name)
        if braces:
            for alt in braces.group(1).split(","):
                names.add(name[: braces.start()] + alt + name[braces.end() :])
        else:
            names.add(name)
    return names


def _resolves(name: str) -> bool:
    import importlib

    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attribute in parts[i:]:
            if not hasattr(obj, attribute):
                return False
            obj = getattr(obj, attribute)
        return True
    return False


def test_every_module_and_name_the_pages_mention_exists():
    """The README (its Architecture section included) and docs/*.md name only modules,
    classes and functions that exist, so a moved or renamed module shows up here."""
    names = _dotted_names(DOCS)
    assert len(names) > 30
    missing = sorted(n for n in names - _NAMED_AS_ABSENT if not _resolves(n))
    assert not missing, f"named in README.md or docs/*.md but not importable: {missing}"
    assert all(not _resolves(n) for n in _NAMED_AS_ABSENT)


def test_the_architecture_page_names_every_module():
    """docs/architecture.md is the map of the house: a module added without a place on it
    fails here (by its file name; ``__init__``/``__main__`` excepted)."""
    page = (REPO / "docs" / "architecture.md").read_text()
    unnamed = sorted(
        str(path.relative_to(REPO / "src"))
        for path in (REPO / "src").rglob("*.py")
        if path.stem not in ("__init__", "__main__")
        and not re.search(rf"(?<![\w]){re.escape(path.stem)}(?![\w])", page)
    )
    assert not unnamed, f"docs/architecture.md does not name: {unnamed}"
