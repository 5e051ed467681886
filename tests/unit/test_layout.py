"""The shape of the shared code, checked from its source with `ast`: one-way layers, no import cycle (lazy imports
inside functions included), no side effect at import, and the size limits (modules <= 400 lines, functions <= 60,
the harness's `fit` <= 40)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from src.utils.contract import CONTRACT
from tests.conftest import REPO

SRC = REPO / "src"
# bottom to top: a package may import the ones before it, never one after it
LAYERS = ("core", "config", "competition", "track", "data", "tune", "run", "predict", "ensemble", "cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def imports(path: Path) -> set[str]:
    """The src modules `path` imports, wherever the import statement is (functions included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in MODULES else node.module
                     for a in node.names]
        else:
            continue
        found |= {n for n in names if n in MODULES}
    return found


GRAPH = {name: imports(path) - {name} for name, path in MODULES.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def package(module: str) -> str | None:
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["src", "utils"] and parts[2] in LAYERS else None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_in_src() -> None:
    assert cycles(GRAPH) == []


def test_packages_import_only_the_layers_below_them() -> None:
    wrong = [f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets
             if package(a) and package(b) and LAYERS.index(package(b)) > LAYERS.index(package(a))]
    assert wrong == []


def test_shared_code_never_imports_the_old_paths() -> None:
    """The contract's old paths are for experiment folders and logged code; the packages import each other."""
    old = set(CONTRACT) - {"src.utils.competition", "src.utils.ensemble"}
    wrong = [f"{a} -> {b}" for a, targets in GRAPH.items() for b in targets & old
             if a.startswith(("src.utils.", "src.tools.", "src.tasks"))]
    assert wrong == []


def test_every_package_says_what_it_holds_and_may_import() -> None:
    for name in LAYERS:
        doc = ast.get_docstring(ast.parse((SRC / "utils" / name / "__init__.py").read_text()))
        assert doc and "import" in doc.lower(), name


@pytest.mark.parametrize("path", [p for p in sorted((SRC / "utils").rglob("*.py"))], ids=lambda p: module_name(p))
def test_nothing_happens_at_import(path: Path) -> None:
    """Top-level statements of shared code define things: no call for its effect (registering, setting the
    environment, tuning the collector); that is the set-up's, called by the entry points."""
    tree = ast.parse(path.read_text())
    effects = [ast.unparse(node)[:80] for node in tree.body
               if isinstance(node, ast.Expr) and not isinstance(node.value, ast.Constant)]
    assert effects == []


def long_functions(path: Path, limit: int) -> list[str]:
    return [f"{module_name(path)}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > limit]


def test_no_module_over_400_lines_and_no_function_over_60() -> None:
    too_long = [f"{name}: {len(p.read_text().splitlines())} lines" for name, p in MODULES.items()
                if len(p.read_text().splitlines()) > 400]
    assert too_long + [f for p in MODULES.values() for f in long_functions(p, 60)] == []


def test_fit_reads_as_its_steps() -> None:
    tree = ast.parse((SRC / "utils" / "run" / "harness.py").read_text())
    fit = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "fit")
    assert fit.end_lineno - fit.lineno + 1 <= 40
