"""The house rules of DESIGN.md: no import circles, and lower layers never import upper ones."""

from __future__ import annotations

import ast
from pathlib import Path

from django.test import SimpleTestCase

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("portal", "sharing", "viewer", "audit")
# Lower layer -> module prefixes it must never import, directly or inside a function.
FORBIDDEN = {
    "portal.models": ("sharing", "viewer", "portal.workspace", "portal.admin"),
    "portal.vault": ("sharing", "viewer", "portal.workspace", "portal.ingest", "portal.admin"),
    "portal.access": ("sharing", "viewer", "portal.workspace", "portal.admin"),
    "portal.ingest": ("sharing", "portal.workspace", "portal.admin"),
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if "migrations" in parts:
                continue
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def import_graph() -> dict[str, set[str]]:
    """Return each project module and the project modules it imports anywhere in its body."""
    modules = _modules()

    def owner(name: str) -> str:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                base = node.module
                if node.level:
                    package = name.split(".")
                    if path.name != "__init__.py":
                        package = package[:-1]
                    base = ".".join(package[: len(package) - node.level + 1] + [node.module])
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in modules else base)
        graph[name] = {owner(t) for t in targets if t.split(".")[0] in PACKAGES} - {name, ""}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return the strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


class LayersTestCase(SimpleTestCase):
    def test_it_has_no_import_circles(self) -> None:
        self.assertEqual(cycles(import_graph()), [])

    def test_it_keeps_lower_layers_below_upper_ones(self) -> None:
        graph = import_graph()
        for lower, banned in FORBIDDEN.items():
            for module, targets in graph.items():
                if module != lower and not module.startswith(lower + "."):
                    continue
                with self.subTest(module=module):
                    self.assertEqual(sorted(t for t in targets if t.startswith(banned)), [], module)

    def test_it_finds_a_circle(self) -> None:
        """The checker itself sees a two-module circle."""
        self.assertEqual(cycles({"a": {"b"}, "b": {"a"}}), [["a", "b"]])
