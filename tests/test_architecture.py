"""The architecture, enforced: core never imports a face (nor Textual/Rich), the faces (cli/, tui/)
reach the core only through ``core.api`` and the snapshot types, and the runtime import graph has no
cycles. The contracts live in pyproject.toml ([tool.importlinter]); ``lint-imports`` checks them."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

import core

ROOT = Path(__file__).resolve().parent.parent
PUBLIC = {"core.api", "core.snapshot"}


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(config["tool"]["importlinter"]["contracts"])


def test_the_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_the_faces_contract_names_every_core_module_but_the_public_ones() -> None:
    """A new core module is private until core.api exports what the faces need from it."""
    (faces,) = [c for c in _contracts() if set(c["source_modules"]) == {"cli", "tui"}]  # type: ignore[arg-type]
    children = {
        f"core.{p.stem if p.suffix == '.py' else p.name}"
        for p in Path(core.__file__).parent.iterdir()
        if not p.name.startswith("__") and (p.suffix == ".py" or (p / "__init__.py").exists())
    }
    assert set(faces["forbidden_modules"]) == children - PUBLIC  # type: ignore[arg-type]


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    modules = graph.modules
    edges = {m: sorted(set(graph.find_modules_directly_imported_by(m)) & modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
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
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for module in sorted(modules):
        if module not in index:
            visit(module)
    return found


def test_the_runtime_import_graph_has_no_cycles() -> None:
    """Imports made only for type checking may point back (a screen names its app's type)."""
    graph = grimp.build_graph("core", "cli", "tui", exclude_type_checking_imports=True)
    assert _cycles(graph) == []
