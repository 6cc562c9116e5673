"""The house's layers: no arrow from a lower layer to a higher one, and no import cycles.

Read from the source (every ``import`` statement, also those inside functions), so a lazy
import that points the wrong way is caught too.
"""

import ast
import collections
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

# lowest first; a module may import its own layer and the layers below it
LAYERS = [
    {"expyre"},
    {"wfl", "wfl.utils", "wfl.configset"},
    {"wfl.autoparallelize"},
    {"wfl.calculators", "wfl.generate", "wfl.generate_configs", "wfl.map", "wfl.fit", "wfl.select"},
]
LAYER_OF = {group: n for n, groups in enumerate(LAYERS) for group in groups}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool = False, module: str | None = None) -> set[str]:
    """Modules ``path`` imports (absolute names); with ``top_level_only``, only those run
    when the module is imported (not inside functions or ``if TYPE_CHECKING:``)."""
    tree = ast.parse(path.read_text())
    module = module or _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                kept = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(kept + ([base] if base else []))
            found.add(base)
            found |= {f"{base}.{alias.name}" for alias in node.names}
    return found


def _group(name: str) -> str:
    parts = name.split(".")
    return parts[0] if parts[0] in ("expyre", "ase") else ".".join(parts[:2])


def _sources(package: str) -> list[Path]:
    return sorted((SRC / package).rglob("*.py"))


@pytest.mark.parametrize("path", _sources("expyre"), ids=lambda p: str(p.relative_to(SRC)))
def test_expyre_imports_neither_wfl_nor_ase(path):
    bad = sorted(n for n in _imports(path) if n.split(".")[0] in ("wfl", "ase"))
    assert not bad, f"{path.relative_to(SRC)} imports {bad}: expyre must not know its clients"


def test_expyre_source_does_not_name_wfl_in_code():
    """Beyond imports: no string or attribute names the client library (docs may)."""
    offenders = []
    for path in _sources("expyre"):
        tree = ast.parse(path.read_text())
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and any(w in ("wfl", '"wfl"') for w in node.value.replace("/", " ").split())
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not offenders, f"expyre code names wfl at {offenders}"


def test_no_lower_layer_imports_a_higher_one():
    wrong = []
    for path in _sources("expyre") + _sources("wfl"):
        source_group = _group(_module_name(path))
        for name in _imports(path):
            target = _group(name)
            if target in LAYER_OF and LAYER_OF[target] > LAYER_OF[source_group]:
                wrong.append(f"{_module_name(path)} -> {name}")
    assert not wrong, "imports pointing up a layer: " + ", ".join(sorted(wrong))


def test_every_package_has_a_layer():
    groups = {_group(_module_name(p)) for p in _sources("expyre") + _sources("wfl")}
    assert groups <= set(LAYER_OF), f"put {sorted(groups - set(LAYER_OF))} in LAYERS"


def test_no_import_cycles_at_import_time():
    """Module-level imports form no cycle (a cycle makes import order matter)."""
    graph = collections.defaultdict(set)
    modules = {_module_name(p): p for p in _sources("expyre") + _sources("wfl")}
    for name, path in modules.items():
        for target in _imports(path, top_level_only=True):
            # "from pkg import name" may name a submodule or an attribute; keep modules
            if target in modules and target != name and not name.startswith(target + "."):
                graph[name].add(target)
    cycles = []
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(modules):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles: " + "; ".join(cycles)


def test_the_import_reader_sees_lazy_and_relative_imports(tmp_path):
    path = tmp_path / "probe.py"
    path.write_text(
        "from typing import TYPE_CHECKING\n"
        "from .jobsdb import JobsDB\n"
        "if TYPE_CHECKING:\n    from expyre.func import ExPyRe\n"
        "def f():\n    from wfl.configset import ConfigSet\n"
    )
    everything = _imports(path, module="expyre.probe")
    assert {"expyre.jobsdb", "expyre.func", "wfl.configset"} <= everything
    at_import = _imports(path, top_level_only=True, module="expyre.probe")
    assert "expyre.jobsdb" in at_import
    assert not {"expyre.func", "wfl.configset"} & at_import
