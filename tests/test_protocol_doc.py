"""docs/protocol.md stays true: every HTTP route and every Socket.IO event the server registers is documented."""

from __future__ import annotations

from pathlib import Path

import signaling.app  # noqa: F401  (registers every route module and event handler)
from signaling.http_api import api
from signaling.sockets import HANDLERS

DOC = (Path(__file__).resolve().parent.parent / "docs" / "protocol.md").read_text()


def test_every_route_is_documented() -> None:
    missing = [f"{r.method} {r.path}" for r in api.routes if f"`{r.method} {r.path}" not in DOC]
    assert missing == []


def test_every_event_is_documented() -> None:
    missing = [e for e in HANDLERS if f"`{e}`" not in DOC]
    assert missing == []
