"""Imports flow one way (architecture.md): signaling -> media -> recordings -> mediation; mediation imports no
aiohttp, socketio or aiortc."""

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


def imports(pkg: str) -> list[tuple[Path, str]]:
    out = []
    for f in (ROOT / pkg).rglob("*.py"):
        for node in ast.walk(ast.parse(f.read_text(), str(f))):
            if isinstance(node, ast.Import):
                out += [(f, a.name.split(".")[0]) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                out.append((f, node.module.split(".")[0]))
    return out


def test_imports_flow_one_way() -> None:
    bad = [(str(f.relative_to(ROOT)), m) for pkg, ok in ALLOWED.items() for f, m in imports(pkg)
           if m in OURS and m not in ok]
    assert bad == []


def test_domain_core_has_no_transport_or_media_imports() -> None:
    bad = [(str(f.relative_to(ROOT)), m) for f, m in imports("mediation") if m in BANNED_IN_CORE]
    assert bad == []
