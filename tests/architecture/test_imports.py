"""The import graph follows DESIGN.md: no circles in services/, dependencies point one way.

Every import counts, at module level or inside a function: a lazy import hides a circle from the
interpreter, not from a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[2]
OURS = ("services", "agents", "memory", "causal", "iac", "web", "sim", "bench")
# DESIGN.md section 2: who may import whom
ALLOWED = {
    "memory": set(),
    "causal": set(),
    "iac": set(),
    "agents": {"memory", "causal", "iac"},
    "services": {"agents", "memory", "causal", "iac"},
}
# the embedded demo is the one place the platform starts the simulated fleet beside itself
EXCEPTIONS = {("services.demo", "sim")}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for top in OURS:
        for path in (ROOT / top).rglob("*.py"):
            found[_module_name(path)] = path
    return found


def _imports(path: Path, modules: dict[str, Path], *, package: str | None = None) -> set[str]:
    """Our modules that ``path`` imports (``from a.b import c`` counts as a.b.c when c is a module)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    if package is None:
        package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


def _graph() -> nx.DiGraph:
    modules = _modules()
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        for target in _imports(path, modules):
            if target != name and not name.startswith(target + "."):  # a package's own __init__ is no edge back
                graph.add_edge(name, target)
    return graph


def test_services_import_graph_has_no_circle():
    graph = _graph().subgraph([n for n in _graph() if n.startswith("services")])
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, "import circles in services/: " + "; ".join(" -> ".join(c + [c[0]]) for c in cycles[:5])


def test_only_the_worker_imports_the_task_module():
    graph = _graph()
    importers = sorted(n for n in graph.predecessors("services.worker.tasks") if not n.startswith("services.worker."))
    assert importers == [], f"enqueue by name (services.worker.queue) instead of importing tasks: {importers}"


def test_dependencies_point_one_way():
    wrong = []
    for source, target in _graph().edges:
        top, target_top = source.split(".")[0], target.split(".")[0]
        if (source, target_top) in EXCEPTIONS:
            continue
        if top in ALLOWED and target_top != top and target_top not in ALLOWED[top]:
            wrong.append(f"{source} -> {target}")
    assert not wrong, "imports against DESIGN.md's direction: " + ", ".join(sorted(wrong))


def test_the_walker_sees_lazy_and_relative_imports(tmp_path):
    """The check itself can fail: a function-local or relative import is an edge like any other."""
    modules = _modules()
    source = tmp_path / "lazy.py"
    source.write_text("def f():\n    from services.worker import tasks\n    from . import queue\n    return tasks, queue\n")
    found = _imports(source, modules, package="services.worker")
    assert found == {"services.worker.tasks", "services.worker.queue"}
