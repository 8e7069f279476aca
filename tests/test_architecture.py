"""The lines README.md's "Architecture" section draws, checked on every module's imports.

Every ``import`` and ``from ... import`` counts, wherever it stands: at the top, inside a
function, or under ``TYPE_CHECKING`` (a cycle a type checker walks is still a knot a reader
has to untie). ``from package import name`` is an import of ``package.name`` when that is a
module of the project, else of ``package``.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("gateway", "menus", "store", "simulators")

# The rooms: what each package may import of the other three (a prefix covers its modules).
MAY_IMPORT: Mapping[str, tuple[str, ...]] = {
    "menus": (),  # pure: the engine, the journeys, the screens and their texts
    "store": ("menus.ports",),  # the shapes the engine asks for and the store answers
    "simulators": ("menus.screens",),  # a handset measures a screen as the network would
    "gateway": ("menus", "store", "simulators"),  # simulators: only from SIMULATOR_HOSTS
}
# The gateway modules that run simulators: the CLI's commands and the web handset.
SIMULATOR_HOSTS = ("gateway.cli", "gateway.simulator_web")
# What the server (the app and everything it imports) never loads.
SERVER = "gateway.app"
NEVER_IN_SERVER = ("gateway.cli", "simulators.terminal")
# Crossings the README names as temporary, with the reason: (importer, imported) -> why.
TEMPORARY: Mapping[tuple[str, str], str] = {}
# One exception root per package: every exception a package defines derives from it.
ROOTS: Mapping[str, str] = {
    "gateway": "gateway.errors.GatewayError",
    "menus": "menus.journey.MenuError",
    "store": "store.errors.StoreError",
    "simulators": "simulators.errors.SimulatorError",
}
# Modules that do something on import: run the CLI, or need Alembic's migration context.
NOT_IMPORTED = ("gateway.__main__", "store.migrations")


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    path: Path
    line: int

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line} imports {self.imported}"


def modules() -> dict[str, Path]:
    """Every module of the four packages, by dotted name."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imports(known: Mapping[str, Path]) -> list[Import]:
    """Every import of one project module by another, with the file and line that makes it."""
    found: dict[Import, None] = {}  # in order, once each
    for name, path in known.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    package = package[: len(package) - node.level + 1]
                    base = ".".join([*package, base] if base else package)
                targets = [
                    f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base
                    for alias in node.names
                ]
            else:
                continue
            for target in targets:
                module = _project_module(target, known)
                if module is not None and module != name:
                    found[Import(name, module, path, node.lineno)] = None
    return list(found)


def _project_module(dotted: str, known: Mapping[str, Path]) -> str | None:
    """The project module ``dotted`` names (itself or its nearest parent), if any."""
    while dotted and dotted not in known:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def crossings(found: list[Import]) -> Iterator[str]:
    """Each import that crosses a line, said with the line it crosses."""
    for edge in found:
        room, other = edge.importer.split(".")[0], edge.imported.split(".")[0]
        if room == other or (edge.importer, edge.imported) in TEMPORARY:
            continue
        allowed = MAY_IMPORT[room]
        if not _within(edge.imported, allowed):
            said = ", ".join(allowed) or "nothing of gateway, store or simulators"
            yield f"{edge}: {room} may import {said}"
        elif other == "simulators" and not _within(edge.importer, SIMULATOR_HOSTS):
            yield f"{edge}: only {' and '.join(SIMULATOR_HOSTS)} run simulators"


def cycles(found: list[Import]) -> list[list[str]]:
    """The strongly connected groups of modules (Tarjan): each is at least one cycle."""
    graph: dict[str, set[str]] = {}
    for edge in found:
        graph.setdefault(edge.importer, set()).add(edge.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for other in sorted(graph.get(module, ())):
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in on_stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            group: list[str] = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == module:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return groups


def reached_from(start: str, found: list[Import]) -> dict[str, list[Import]]:
    """Every module ``start`` loads, each with one chain of imports that gets there."""
    graph: dict[str, list[Import]] = {}
    for edge in found:
        graph.setdefault(edge.importer, []).append(edge)
    chains: dict[str, list[Import]] = {start: []}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for edge in graph.get(module, []):
            if edge.imported not in chains:
                chains[edge.imported] = [*chains[module], edge]
                queue.append(edge.imported)
    return chains


def test_architecture_imports_stay_in_their_rooms() -> None:
    crossed = list(crossings(imports(modules())))
    assert not crossed, "imports across the README's lines:\n" + "\n".join(crossed)


def test_architecture_server_loads_neither_the_cli_nor_the_terminal() -> None:
    chains = reached_from(SERVER, imports(modules()))
    loaded = [
        f"{SERVER} loads {module} by\n  " + "\n  ".join(str(edge) for edge in chains[module])
        for module in NEVER_IN_SERVER
        if module in chains
    ]
    assert not loaded, "\n".join(loaded)


def test_architecture_has_no_import_cycle() -> None:
    found = imports(modules())
    knots = []
    for group in cycles(found):
        inside = [str(e) for e in found if e.importer in group and e.imported in group]
        knots.append(f"cycle among {', '.join(group)}:\n  " + "\n  ".join(sorted(inside)))
    assert not knots, "\n".join(knots)


def test_architecture_one_exception_root_per_package() -> None:
    strays: list[str] = []
    known = modules()
    for name, path in known.items():
        package = name.split(".")[0]
        if package not in ROOTS or _within(name, NOT_IMPORTED):
            continue
        root_module, _, root_name = ROOTS[package].rpartition(".")
        root = getattr(importlib.import_module(root_module), root_name)
        module = importlib.import_module(name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if value.__module__ != name or not issubclass(value, BaseException):
                continue
            if value is not root and not issubclass(value, root):
                where = path.relative_to(ROOT)
                strays.append(f"{where}: {value.__qualname__} does not derive from {root_name}")
    assert not strays, "\n".join(strays)


def test_architecture_check_sees_a_crossing_and_a_cycle() -> None:
    # The checks above pass on a clean tree; this shows they would fail on a dirty one.
    edges = [
        Import("menus.engine", "store.db", ROOT / "menus/engine.py", 1),
        Import("store.db", "menus.engine", ROOT / "store/db.py", 2),
        Import("gateway.hop", "simulators.phone", ROOT / "gateway/hop.py", 3),
    ]
    crossed = list(crossings(edges))
    assert crossed == [
        "menus/engine.py:1 imports store.db: menus may import nothing of gateway, store or "
        "simulators",
        "store/db.py:2 imports menus.engine: store may import menus.ports",
        "gateway/hop.py:3 imports simulators.phone: only gateway.cli and gateway.simulator_web "
        "run simulators",
    ]
    assert cycles(edges) == [["menus.engine", "store.db"]]
