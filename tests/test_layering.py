"""The house's rules, read from the source (docs/architecture.md, "Layers"):

- imports flow one way: signaling -> media -> recordings -> mediation; mediation imports no aiohttp, socketio or
  aiortc;
- signaling/ does not query the database itself (no SQLAlchemy), the CLI's `db upgrade` / demo wiring aside;
- no import cycles inside our packages (module-level imports);
- no private names imported across modules, and no imports of our own modules inside functions (lazy imports
  that hide cycles).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALLOWED = {
    "mediation": {"mediation"},
    "recordings": {"recordings", "mediation"},
    "media": {"media", "recordings", "mediation"},
    "signaling": {"signaling", "media", "recordings", "mediation", "web"},
}
OURS = set(ALLOWED) | {"web"}
BANNED_IN_CORE = {"aiohttp", "socketio", "aiortc", "av", "engineio"}
DATABASE = {"sqlalchemy", "alembic", "asyncpg", "aiosqlite"}
SIGNALING_DB_WIRING = {"signaling/cli_server.py"}  # `onedoor demo` (its demo staff and case)


def modules() -> dict[str, Path]:
    out = {}
    for pkg in ALLOWED:
        for f in (ROOT / pkg).rglob("*.py"):
            if "migrations" in f.parts:
                continue
            rel = f.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            out[".".join(parts)] = f
    return out


def imports(f: Path, *, top_level_only: bool = False) -> list[tuple[str, list[str], int]]:
    """(module, names, line) of each absolute import; with top_level_only, those outside functions."""
    tree = ast.parse(f.read_text(), str(f))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    out: list[tuple[str, list[str], int]] = []
    for node in nodes:
        if isinstance(node, ast.Import):
            out += [(a.name, [], node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.module, [a.name for a in node.names], node.lineno))
    return out


def rel(f: Path) -> str:
    return str(f.relative_to(ROOT))


def test_imports_flow_one_way() -> None:
    bad = [(rel(f), m) for name, f in modules().items() for m, _, _ in imports(f)
           if m.split(".")[0] in OURS and m.split(".")[0] not in ALLOWED[name.split(".")[0]]]
    assert bad == []


def test_domain_core_has_no_transport_or_media_imports() -> None:
    bad = [(rel(f), m) for name, f in modules().items() if name.startswith("mediation")
           for m, _, _ in imports(f) if m.split(".")[0] in BANNED_IN_CORE]
    assert bad == []


def test_signaling_does_not_query_the_database() -> None:
    bad = [(rel(f), m) for name, f in modules().items() if name.startswith("signaling")
           and rel(f) not in SIGNALING_DB_WIRING for m, _, _ in imports(f) if m.split(".")[0] in DATABASE]
    assert bad == []


def test_no_import_cycles_inside_our_packages() -> None:
    mods = modules()
    graph: dict[str, set[str]] = {}
    for name, f in mods.items():
        deps = set()
        for m, names, _ in imports(f, top_level_only=True):
            deps |= {x for x in (m, *(f"{m}.{n}" for n in names)) if x in mods and x != name}
        graph[name] = deps
    cycles: list[list[str]] = []
    state: dict[str, int] = {}

    def visit(n: str, path: list[str]) -> None:
        state[n] = 1
        for d in sorted(graph[n]):
            if state.get(d) == 1:
                cycles.append([*path[path.index(d):], d] if d in path else [n, d])
            elif d not in state:
                visit(d, [*path, d])
        state[n] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    # a package's __init__ importing its own submodules is not a cycle of interest
    cycles = [c for c in cycles if not any(mods[x].name == "__init__.py" for x in c)]
    assert cycles == []


def test_no_private_names_across_modules_and_no_lazy_imports_of_our_own() -> None:
    private, lazy = [], []
    for _, f in modules().items():
        tree = ast.parse(f.read_text(), str(f))
        top = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                    and node.module.split(".")[0] in OURS:
                private += [(rel(f), node.module, a.name) for a in node.names
                            if a.name.startswith("_") and not a.name.startswith("__")]
                if id(node) not in top and not _type_checking(tree, node):
                    lazy.append((rel(f), node.lineno, node.module))
            elif isinstance(node, ast.Import) and id(node) not in top:
                lazy += [(rel(f), node.lineno, a.name) for a in node.names if a.name.split(".")[0] in OURS]
    assert private == []
    assert lazy == []


def _type_checking(tree: ast.Module, target: ast.AST) -> bool:
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            if any(n is target for n in ast.walk(node)):
                return True
    return False
