"""The layout's rules: no import cycles between hwnas modules, the dependency direction of the
four packages, every module with an explicit ``__all__``, and no benchmark script on sys.path."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {"search": "hwnas.search", "latency": "hwnas.latency", "meta": "hwnas.meta",
            "bench": "hwnas.bench"}
#: who may import whom at module level (DESIGN.md: bench uses all; meta and latency use search)
ALLOWED = {"search": {"search"}, "latency": {"latency", "search"},
           "meta": {"meta", "search"}, "bench": {"bench", "search", "latency", "meta"}}


def _modules() -> dict[str, Path]:
    out = {}
    for top, pkg in PACKAGES.items():
        for path in (REPO / top).rglob("*.py"):
            rel = path.relative_to(REPO / top)
            if rel.parts[0] in ("scripts", "micro"):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([pkg, *parts])] = path
    return out


def _top_level_imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules imported when ``name`` is imported: module-level statements only (imports inside
    functions and under ``if TYPE_CHECKING`` run later or never)."""
    tree = ast.parse(path.read_text())
    is_pkg = path.name == "__init__.py"
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            if isinstance(node, ast.If | ast.Try | ast.With):
                for block in ("body", "orelse", "finalbody", "handlers"):
                    for sub in getattr(node, block, []):
                        visit(sub.body if isinstance(sub, ast.ExceptHandler) else [sub])
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[: len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                found.add(target)
                for a in node.names:  # `from pkg import submodule`
                    if f"{target}.{a.name}" in modules:
                        found.add(f"{target}.{a.name}")

    visit(tree.body)
    resolved = set()
    for t in found:
        while t and t not in modules:
            t = t.rpartition(".")[0]
        if t and t != name and not name.startswith(t + "."):  # a parent is imported first anyway
            resolved.add(t)
            # importing a.b.c runs a.b's __init__ too
            parent = t.rpartition(".")[0]
            while parent in modules and not name.startswith(parent + "."):
                resolved.add(parent)
                parent = parent.rpartition(".")[0]
    return resolved


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {m: _top_level_imports(m, p, modules) for m, p in modules.items()}


def test_no_import_cycles():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def strong(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in graph:
        if v not in index:
            strong(v)
    assert cycles == []


def test_packages_depend_one_way():
    wrong = [(m, t) for m, targets in _graph().items() for t in targets
             if t.split(".")[1] not in ALLOWED[m.split(".")[1]]]
    assert wrong == []


def test_every_module_states_its_public_names():
    missing = [m for m, p in _modules().items()
               if "__all__" not in p.read_text() and not p.name.startswith("__")]
    assert missing == []


def test_scripts_are_shims_without_path_edits():
    for script in (REPO / "bench" / "scripts").glob("*.py"):
        text = script.read_text()
        assert "sys.path" not in text, script
        assert len(text.splitlines()) < 60, f"{script} holds logic; move it to hwnas.bench.studies"
