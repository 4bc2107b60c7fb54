"""The package's shape: dependencies point one way (no import cycles, no layer importing one
above it), and `syncd run` never loads the emulator's web server."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import syncd

PACKAGE = Path(syncd.__file__).parent
# Each module's layer: a module imports only from its own layer or those below.
LAYERS = [
    ("syncd.errors", "syncd.model"),
    ("syncd.config", "syncd.sections", "syncd.credentials", "syncd.logs", "syncd.metrics",
     "syncd.journal", "syncd.remote.protocol", "syncd.remote.names"),
    ("syncd.local", "syncd.remote"),
    ("syncd.engine",),
    ("syncd.service",),
    ("syncd.cli", "syncd.emulator", "syncd.__main__"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> set[str]:
    """Every syncd module ``path`` imports, at any depth of the file (function-level too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("syncd"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("syncd"))
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {m for m in imports(path) if m in modules and m != name}
            for name, path in modules.items()}


def layer(module: str) -> int:
    if module == "syncd":
        return 0
    for index, prefixes in enumerate(LAYERS):
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return index
    raise AssertionError(f"{module} has no layer in tests/unit/test_layout.py")


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_no_import_cycles() -> None:
    """TYPE_CHECKING and function-level imports count too: a cycle is a cycle."""
    assert [] == cycles(graph())


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert [["a", "b"]] == cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}})


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = sorted(f"{m} -> {d}" for m, deps in graph().items() for d in deps
                    if layer(d) > layer(m))
    assert [] == upward


def test_the_daemon_does_not_load_the_emulator_or_its_web_server() -> None:
    code = ("import sys, syncd.cli.main, syncd.engine.mirror, syncd.service.loop; "
            "print(sorted({m.split('.')[0] for m in sys.modules"
            " if m.startswith(('uvicorn', 'starlette', 'syncd.emulator.app'))}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "[]" == out.stdout.strip()
