"""docs/protocol.md stays true: every HTTP route and every Socket.IO event the server registers is documented."""

from __future__ import annotations

from pathlib import Path

from signaling.app import api_routes, event_handlers

DOC = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()


def test_every_route_is_documented() -> None:
    missing = [f"{r.method} {r.path}" for r in api_routes().routes if f"`{r.method} {r.path}" not in DOC]
    assert missing == []


def test_every_event_is_documented() -> None:
    missing = [e for e in event_handlers() if f"`{e}`" not in DOC]
    assert missing == []
