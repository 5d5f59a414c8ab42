"""Repository layout rules, read statically with `ast` (nothing is imported): no import circles, the runtime's
imports run one way (sources -> landmarks -> align -> models -> outputs -> pipeline / batch / cli), the runtime
never needs torch, every module says what it does, and no runtime module grows past 500 lines.

Every `import` counts, also those inside functions; only the bodies of `if TYPE_CHECKING:` blocks are skipped
(they never run). A package and a module of the same name count alike: `libreface/outputs/` and
`libreface/outputs.py` are both the component "outputs".
"""

from __future__ import annotations

import ast
import graphlib
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("libreface", "distill", "gui")
MAX_LINES = 500

# runtime component -> components it must not import (directly)
FORBIDDEN = {
    "weights": {"sources", "landmarks", "align", "models", "outputs", "pipeline", "cli", "batch"},
    "sources": {"models", "outputs", "pipeline", "cli"},
    "landmarks": {"models", "outputs", "pipeline", "cli"},
    "align": {"models", "outputs", "pipeline", "cli"},
    "models": {"outputs", "pipeline", "cli"},
    "outputs": {"pipeline", "cli", "batch"},
}
TORCH = {"torch", "timm", "torchvision"}


@dataclass(frozen=True)
class Import:
    """One import statement of a project module: the project module it reaches (None when external), the
    top-level name it imports (`numpy`, `libreface`), and the line."""

    target: str | None
    top: str
    line: int


def module_name(path: Path, root: Path) -> str:
    """`libreface/models/registry.py` -> `libreface.models.registry`; `pkg/__init__.py` -> `pkg`."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def find_modules(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, Path]:
    """Every .py file under the given top-level package folders, by dotted module name."""
    found = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            if "__pycache__" not in path.parts:
                found[module_name(path, root)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Import / ImportFrom nodes anywhere in the tree (functions and classes included), except `if TYPE_CHECKING:`."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module a dotted name belongs to (the longest known prefix), None for an outside package."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in modules:
            return cand
        parts.pop()
    return None


def imports_of(name: str, modules: dict[str, Path]) -> list[Import]:
    """The imports of project module `name`, relative ones resolved."""
    path = modules[name]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in _import_nodes(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(_resolve(alias.name, modules), alias.name.split(".")[0], node.lineno))
            continue
        if node.level:
            base = package.split(".")
            base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
            stem = ".".join(base + ([node.module] if node.module else []))
        else:
            stem = node.module or ""
        for alias in node.names:
            sub = f"{stem}.{alias.name}"  # `from pkg import submodule`
            target = sub if sub in modules else _resolve(stem, modules)
            found.append(Import(target, stem.split(".")[0], node.lineno))
    return found


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Project module -> the project modules it imports (self-imports left out)."""
    return {m: {i.target for i in imports_of(m, modules) if i.target and i.target != m} for m in modules}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as [a, b, ..., a], or None when the graph is acyclic."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as e:
        return list(e.args[1])
    return None


def component(module: str) -> str:
    """The runtime component of a `libreface` module: `libreface.outputs.csv` -> "outputs"."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


@pytest.fixture(scope="module")
def modules() -> dict[str, Path]:
    return find_modules(REPO)


@pytest.fixture(scope="module")
def graph(modules) -> dict[str, set[str]]:
    return import_graph(modules)


def _rel(path: Path) -> str:
    return path.relative_to(REPO).as_posix()


# --- the checker itself: it must see imports and circles, or every rule below would pass vacuously


def test_the_checker_finds_imports_inside_functions_and_a_circle(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""p."""\n')
    (pkg / "sub" / "__init__.py").write_text('"""s."""\n')
    (pkg / "a.py").write_text('"""a."""\nfrom .sub import b\n')
    (pkg / "sub" / "b.py").write_text('"""b."""\ndef f():\n    from ..c import g\n')
    (pkg / "c.py").write_text('"""c."""\nimport numpy\nfrom typing import TYPE_CHECKING\n'
                              'if TYPE_CHECKING:\n    from . import d\nfrom pkg import a\n')
    (pkg / "d.py").write_text('"""d."""\nfrom . import c\n')
    mods = find_modules(tmp_path, ("pkg",))
    g = import_graph(mods)
    assert g["pkg.a"] == {"pkg.sub.b"} and g["pkg.sub.b"] == {"pkg.c"} and g["pkg.c"] == {"pkg.a"}
    cycle = find_cycle(g)
    assert cycle is not None and set(cycle) == {"pkg.a", "pkg.sub.b", "pkg.c"} and cycle[0] == cycle[-1]
    (pkg / "c.py").write_text('"""c."""\n')
    assert find_cycle(import_graph(mods)) is None


def test_the_checker_sees_the_known_edges(graph):
    assert "libreface.weights" in graph["libreface.landmarks"]
    assert "libreface.weights" in graph["libreface.models.session"]
    assert "distill.predict" in graph["distill.train"] and "distill.metrics" in graph["distill.evaluate"]


# --- (a) no circles


def test_the_import_graph_has_no_circles(graph):
    cycle = find_cycle(graph)
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


# --- (b) the runtime's imports run one way


def test_runtime_imports_run_one_way(modules):
    bad = []
    for name in modules:
        if not name.startswith("libreface."):
            continue
        forbidden = FORBIDDEN.get(component(name), set())
        for imp in imports_of(name, modules):
            if imp.top in ("gui", "distill"):
                bad.append(f"{_rel(modules[name])}:{imp.line} imports {imp.top} (nothing in libreface/ may)")
            elif imp.target and imp.target.startswith("libreface.") and component(imp.target) in forbidden:
                bad.append(f"{_rel(modules[name])}:{imp.line} imports {imp.target} ({component(name)} sits below "
                           f"{component(imp.target)})")
    assert not bad, "imports against the pipeline order:\n" + "\n".join(bad)


# --- (c) the runtime never needs torch


def test_the_runtime_does_not_import_torch(modules):
    bad = [f"{_rel(modules[name])}:{imp.line} imports {imp.top}"
           for name in modules if name.split(".")[0] == "libreface"
           for imp in imports_of(name, modules) if imp.top in TORCH]
    assert not bad, "libreface/ must run without torch:\n" + "\n".join(bad)


# --- (d) every module says what it does


def test_every_runtime_and_training_module_has_a_docstring(modules):
    bad = [_rel(path) for name, path in modules.items() if name.split(".")[0] in ("libreface", "distill")
           and not ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))]
    assert not bad, "modules without a module docstring: " + ", ".join(bad)


# --- (e) no runtime module over 500 lines


def test_no_runtime_module_is_over_500_lines(modules):
    sizes = {_rel(path): len(path.read_text(encoding="utf-8").splitlines())
             for name, path in modules.items() if name.split(".")[0] == "libreface"}
    bad = [f"{path}: {n} lines" for path, n in sorted(sizes.items()) if n > MAX_LINES]
    assert not bad, f"modules over {MAX_LINES} lines (split them by pipeline step):\n" + "\n".join(bad)
