"""The import graph: no module imports itself back through others, and apps import downwards only.

The layers, lowest first (chatproject/settings.py lists the apps in this order): an app may import
the ones before it, never one after it. Hooks that let a lower app hear from a higher one
(messaging.signals, rooms.signals, rooms.activity, messaging.room_search) are filled in the
higher app's AppConfig.ready().
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["core", "accounts", "rooms", "notifications", "files", "messaging", "realtime", "search", "chatproject"]
# Not part of the running code's graph: schema history and tooling.
SKIPPED = {"migrations", "tests", "bench", ".venv", "__pycache__"}


def project_modules() -> dict[str, Path]:
    modules = {}
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            if SKIPPED & set(path.relative_to(ROOT).parts):
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            modules[name.removesuffix(".__init__")] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports, at any place in the file (functions included).

    `from package import name` counts as an import of the submodule `package.name` when there is
    one, else of the package; a submodule's implicit import of its own parent packages is no edge.
    """
    modules = project_modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join([*parts, node.module] if node.module else parts)
                for alias in node.names:
                    submodule = f"{base}.{alias.name}"
                    targets.append(submodule if submodule in modules else base)
            for target in targets:
                if target in modules and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    rank = {layer: position for position, layer in enumerate(LAYERS)}
    return sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if rank[target.split(".")[0]] > rank[source.split(".")[0]]
    )


def test_apps_import_only_lower_layers() -> None:
    assert upward_imports(import_graph()) == []


def test_the_checks_see_a_cycle_and_an_upward_import() -> None:
    """The two checks above can fail: a made-up graph with both faults is caught."""
    graph = {"rooms.a": {"messaging.b"}, "messaging.b": {"rooms.a"}}
    assert cycles(graph) == [["messaging.b", "rooms.a"]]
    assert upward_imports(graph) == ["rooms.a -> messaging.b"]
    # And the real graph is read: the message core's reads do use the rooms' membership check.
    assert "rooms.selectors" in import_graph()["messaging.selectors"]


def test_only_the_store_imports_pymongo() -> None:
    offenders = []
    for name, path in project_modules().items():
        if name.startswith("messaging.store"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                modules = [node.module]
            if any(m.split(".")[0] in ("pymongo", "bson") for m in modules):
                offenders.append(name)
    # core.errors maps pymongo's connection failures to 503: it names the exceptions, talks to nothing.
    assert sorted(set(offenders)) == ["core.errors"]


def test_only_the_door_touches_the_channel_layer() -> None:
    users = set()
    for name, path in project_modules().items():
        text = path.read_text()
        if "get_channel_layer" in text:
            users.add(name)
    # health.py makes a round trip through the layer to report whether it answers.
    assert users == {"core.broadcast", "chatproject.health"}


def test_celery_task_names_survive_the_move() -> None:
    """Queued tasks and the beat schedule name tasks by their first home, `messaging.tasks`."""
    from django.conf import settings

    from chatproject.celery import app

    app.loader.import_default_modules()
    pinned = {
        "messaging.tasks.index_room",
        "messaging.tasks.index_sweep",
        "messaging.tasks.make_thumbnail",
        "messaging.tasks.expire_uploads",
    }
    assert pinned <= set(app.tasks)
    assert {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()} <= set(app.tasks)
