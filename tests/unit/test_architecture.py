"""The package's shape, read from its source: no import cycles between bench's modules at import
time, and no module reaching into another package's private names (issue 13's target)."""

from __future__ import annotations

import ast
from pathlib import Path

import bench

ROOT = Path(bench.__file__).parent


def _modules() -> dict[str, Path]:
    out = {}
    for p in ROOT.rglob("*.py"):
        parts = list(p.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _imports(name: str, path: Path, *, top_level_only: bool) -> list[tuple[str, str | None]]:
    """(module, imported name or None) for every `import` in the file; with top_level_only, those
    that run when the module is imported (TYPE_CHECKING blocks and function bodies excluded)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    if top_level_only:
        nodes: list[ast.AST] = []
        for node in tree.body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            nodes.extend(ast.walk(node) if isinstance(node, (ast.If, ast.Try, ast.With)) else [node])
    else:
        nodes = list(ast.walk(tree))
    out: list[tuple[str, str | None]] = []
    for n in nodes:
        if isinstance(n, ast.Import):
            out += [(a.name, None) for a in n.names]
        elif isinstance(n, ast.ImportFrom):
            module = n.module or ""
            if n.level:
                base = package.split(".")[: len(package.split(".")) - (n.level - 1)]
                module = ".".join([*base, *([module] if module else [])])
            out += [(module, a.name) for a in n.names]
    return out


def _graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps = set()
        for module, attr in _imports(name, path, top_level_only=True):
            if attr and f"{module}.{attr}" in mods:
                deps.add(f"{module}.{attr}")
            elif module in mods:
                deps.add(module)
        graph[name] = deps - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_bench_modules() -> None:
    mods = _modules()
    graph = _graph(mods)
    assert len(graph) > 50 and graph["bench.cli"], "the import graph was not read"
    assert _cycles(graph) == []


def _package(module: str) -> str:
    """bench.backends.openai -> bench.backends; bench.cli -> bench."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 else parts[0]


def test_no_private_names_imported_across_packages() -> None:
    mods = _modules()
    reach = []
    for name, path in mods.items():
        for module, attr in _imports(name, path, top_level_only=False):
            if not module.startswith("bench") or not attr:
                continue
            private = attr.startswith("_") and not attr.startswith("__")
            if private and _package(module) != _package(name):
                reach.append(f"{name} imports {module}.{attr}")
    assert reach == []
