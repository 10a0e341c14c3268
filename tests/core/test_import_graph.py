"""The package's shape, read from its import statements (`ast`, every import, module level or not):

- a `domain/` module imports only the standard library, protobuf and the protos (`clonedesk.v1`), and
  other `domain/` modules: the pure cores stay pure;
- no service imports another service's modules: what services share lives in the shared package
  (`clonedesk.core`) and the protos, and the shared package imports no service;
- no two modules import each other, directly or round a loop.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "clonedesk"
ROOT = Path(__file__).resolve().parents[2] / "services"
SHARED = {"core", "v1"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join([PACKAGE, *parts])] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every module `name` imports: `from a import b` counts as a.b where that is a module, else a."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            named = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in MODULES]
            targets.update(named or [source])
    return targets


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _package_of(module: str) -> str | None:
    parts = module.split(".")
    if len(parts) < 2 or parts[0] != PACKAGE:
        return None
    if len(parts) == 2 and MODULES.get(module, Path()).name != "__init__.py":
        return None  # clonedesk.cli, clonedesk.__main__: the root command
    return parts[1]


def _is_domain(module: str) -> bool:
    return "domain" in module.split(".")


def test_domain_modules_import_only_the_standard_library_the_protos_and_other_domain_modules():
    wrong = []
    for module, targets in GRAPH.items():
        if not _is_domain(module):
            continue
        for target in targets:
            top = target.split(".")[0]
            if top == PACKAGE:
                allowed = _is_domain(target) or _package_of(target) == "v1" or target == PACKAGE
            else:
                allowed = top in sys.stdlib_module_names or target.startswith("google.protobuf")
            if not allowed:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_service_imports_another_services_modules():
    wrong = []
    for module, targets in GRAPH.items():
        mine = _package_of(module)
        if mine is None:
            continue  # the root command registers every package's commands
        for target in targets:
            theirs = _package_of(target)
            if theirs is None or theirs == mine or theirs == "v1" or target == PACKAGE:
                continue
            if mine in SHARED:
                wrong.append(f"the shared {module} imports the service module {target}")
            elif theirs not in SHARED:
                wrong.append(f"{module} ({mine}) imports {target} ({theirs})")
    assert not wrong, "\n".join(sorted(wrong))


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = 0
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in graph:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
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


def test_no_import_cycles():
    # An edge to a package is an edge to its __init__ (ours import nothing of their own package).
    graph = {module: {t for t in targets if t in MODULES and t != module} for module, targets in GRAPH.items()}
    assert _cycles(graph) == []


def test_the_checks_catch_what_they_look_for():
    """The walker on made-up modules: each rule fires on a module that breaks it."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert _package_of("clonedesk.trainer.adapters.buffer") == "trainer"
    assert _package_of("clonedesk.cli") is None and _package_of("clonedesk.core.domain.ids") == "core"
    assert _is_domain("clonedesk.metering.domain.billing") and not _is_domain("clonedesk.metering.adapters.store")
    assert "clonedesk.core.domain.ids" in GRAPH["clonedesk.ingest.domain.zendesk"]  # the walker sees imports
