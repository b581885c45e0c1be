"""The shape of the code base, kept by tests: no import cycle (imports inside functions
count: a cycle there is one the next refactoring trips over), the probe beside the runner
rather than inside it, and modules small enough to read."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 800


def _modules() -> dict[str, Path]:
    """Module name -> file, for the engine (advisor/) and the rules (installed as advisor.rules)."""
    found: dict[str, Path] = {}
    for folder, package in ((ROOT / "advisor", "advisor"), (ROOT / "rules", "advisor.rules")):
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join([package, *parts])] = path
    return found


MODULES = _modules()


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """The modules of ours that `tree` imports anywhere, except under `if TYPE_CHECKING:`."""
    names: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _type_checking_only(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")
                parent = parent if is_package else parent[:-1]
                parent = parent[: len(parent) - (node.level - 1)]
                base = ".".join([*parent, *([base] if base else [])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                names.add(full if full in MODULES else base)
        stack.extend(ast.iter_child_nodes(node))
    return {name for name in names if name in MODULES and name != module}


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        graph[name] = _imported(tree, name, path.name == "__init__.py")
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_graph_sees_our_imports() -> None:
    """Module-level, function-level and `from package import module` imports all count, and
    the rules are known by their installed names (advisor.rules.*)."""
    graph = import_graph()
    assert "advisor.findings" in graph["advisor.rule"]  # at module level
    assert "advisor.rules.not_converged" in graph["advisor.probe.stage"]  # inside a function
    assert "advisor.facts.values" in graph["advisor.rules.missing_zero_grad"]  # from-import
    assert len(MODULES) > 40


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c"]]


def test_no_import_cycle() -> None:
    assert cycles(import_graph()) == []


def test_the_probe_does_not_import_the_runner() -> None:
    graph = import_graph()
    inside = {name: deps for name, deps in graph.items() if name.startswith("advisor.probe")}
    assert {name for name, deps in inside.items() if "advisor.runner" in deps} == set()


def test_the_static_path_never_imports_the_probe() -> None:
    """Rules and facts are the static path: the probe (numpy, torch) is beside them."""
    graph = import_graph()
    static = [n for n in graph if n.startswith(("advisor.rules", "advisor.facts"))]
    assert [n for n in static if any(d.startswith("advisor.probe") for d in graph[n])] == []


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_small_enough_to_read(name: str) -> None:
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_LINES, f"{MODULES[name].relative_to(ROOT)}: {lines} lines"
