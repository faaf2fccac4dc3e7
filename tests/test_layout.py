"""The shape of the code: no import circles, no private names across modules, small modules and functions.

Read with :mod:`ast` (nothing is imported), over every ``.py`` file of the
project's folders:

* no import circle between project modules, counting imports inside functions
  and under ``if TYPE_CHECKING:`` (a package's ``__init__`` counts as the
  package; each circle is shown as a chain ``a -> b -> a``);
* no ``from x import _name`` of a private name of another project module;
* no module over 400 lines (docstrings included), tests too;
* no function or method over 80 lines outside ``bench/`` and ``tests/``;
* ``server/`` and ``client/`` never import each other.

Each test fails with the full list of offenders.
"""

from __future__ import annotations

import ast
from collections import deque
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("common", "server", "client", "simulations", "bench", "scripts")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
NO_FUNCTION_LIMIT = ("bench", "tests")


def module_name(path: Path) -> str:
    """``server/report/build.py`` -> ``server.report.build``; ``server/__init__.py`` -> ``server``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def python_files(folders: tuple[str, ...]) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


@lru_cache(maxsize=None)
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@lru_cache(maxsize=None)
def project_modules() -> dict[str, Path]:
    return {module_name(p): p for p in python_files(PROJECT)}


def resolve(name: str) -> str | None:
    """The project module a dotted name lands in (its longest prefix that is one), else None."""
    modules = project_modules()
    parts = name.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in modules:
            return candidate
    return None


def imports(module: str) -> list[tuple[int, str, str | None]]:
    """Every import in ``module`` as (line, project module imported, the name taken from it or None)."""
    path = project_modules()[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = resolve(alias.name)
                if target:
                    found.append((node.lineno, target, None))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            for alias in node.names:
                submodule = resolve(f"{base}.{alias.name}")
                if submodule == f"{base}.{alias.name}":  # `from package import module`
                    found.append((node.lineno, submodule, None))
                elif resolve(base):
                    found.append((node.lineno, resolve(base), alias.name))
    return found


def import_graph() -> dict[str, set[str]]:
    return {m: {target for _, target, _ in imports(m) if target != m} for m in project_modules()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def shortest_circle(graph: dict[str, set[str]], start: str, members: set[str]) -> list[str]:
    """The shortest chain start -> ... -> start inside one strongly connected component."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(graph[v] & members):
            if w == start:
                chain = [v]
                while chain[-1] != start:
                    chain.append(previous[chain[-1]])
                return [start, *reversed(chain[:-1]), start] if v != start else [start, start]
            if w not in previous:
                previous[w] = v
                queue.append(w)
    raise AssertionError(f"{start} is in no circle")


def test_no_import_circles():
    graph = import_graph()
    circles = []
    for component in strongly_connected(graph):
        chain = shortest_circle(graph, component[0], set(component))
        others = sorted(set(component) - set(chain))
        circles.append(" -> ".join(chain) + (f"   (same circle also holds: {', '.join(others)})" if others else ""))
    assert not circles, "import circles between project modules:\n  " + "\n  ".join(circles)


def test_no_private_names_imported_across_modules():
    offenders = [f"{project_modules()[m].relative_to(ROOT)}:{line}: from {target} import {name}"
                 for m in sorted(project_modules()) for line, target, name in imports(m)
                 if name and name.startswith("_") and not name.startswith("__") and target != m]
    assert not offenders, "private names imported from another module:\n  " + "\n  ".join(offenders)


def test_modules_are_at_most_400_lines():
    offenders = []
    for path in python_files((*PROJECT, "tests")):
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_MODULE_LINES:
            offenders.append(f"{path.relative_to(ROOT)}: {lines} lines")
    assert not offenders, f"modules over {MAX_MODULE_LINES} lines:\n  " + "\n  ".join(offenders)


def long_functions(path: Path) -> list[str]:
    found = []

    def walk(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                name = f"{prefix}{child.name}"
                length = child.end_lineno - child.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found.append(f"{path.relative_to(ROOT)}:{child.lineno}: {name} ({length} lines)")
                walk(child, f"{name}.")
            elif isinstance(child, ast.ClassDef):
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(parsed(path), "")
    return found


def test_functions_are_at_most_80_lines():
    folders = tuple(f for f in PROJECT if f not in NO_FUNCTION_LIMIT)
    offenders = [line for path in python_files(folders) for line in long_functions(path)]
    assert not offenders, f"functions over {MAX_FUNCTION_LINES} lines:\n  " + "\n  ".join(offenders)


# Arrows run one way: simulations (the CLI) -> server, client -> common; server and client never meet.
FORBIDDEN = {"server": {"client", "simulations"}, "client": {"server", "simulations"},
             "common": {"server", "client", "simulations"}}


def test_layers_do_not_cross():
    offenders = []
    for m in sorted(project_modules()):
        forbidden = FORBIDDEN.get(m.split(".")[0], set())
        offenders += [f"{project_modules()[m].relative_to(ROOT)}:{line}: imports {target}"
                      for line, target, _ in imports(m) if target.split(".")[0] in forbidden]
    assert not offenders, "imports across layers:\n  " + "\n  ".join(offenders)


def test_the_checks_see_the_project():
    """The walk finds the modules and their imports (a broken walk would make every check pass)."""
    graph = import_graph()
    assert {"server.report.build", "client.app", "common.errors", "bench.harness"} <= set(graph)
    assert "server.report.schema" in graph["server.report.html"]
