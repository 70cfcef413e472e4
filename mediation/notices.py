"""What happens when something reaches the court or comes back from it, as domain events and notices.

Use cases return these; transports deliver them (`agreement:state` pushes, `court:notice` to the parties) and
record what was delivered (`record_notice`), so the parties' notices are the same whichever transport acted.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.db import Database

NOTICE = "parties.notified"
NOTICE_DELIVERED = "parties.notice_delivered"  # by another node, to the people connected there (docs/architecture.md)


@dataclass(frozen=True)
class AgreementChanged:
    """The case's agreement or application changed: every admitted participant gets the new state."""

    case_code: str


@dataclass(frozen=True)
class Notice:
    """A notice to the parties (R25: they are notified) — delivered to connected parties, always recorded."""

    case_code: str
    subject: str
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)

    def body(self, now: dt.datetime | None = None) -> dict[str, Any]:
        return {"kind": self.kind, "case": self.case_code, **self.detail,
                "at": (now or dt.datetime.now(dt.UTC)).isoformat()}


@dataclass(frozen=True)
class ApplicationSubmitted:
    """The last application signature (or document) submitted it: keys go to the court, the parties are told."""

    case_code: str
    application_id: int
    court_id: str


Event = AgreementChanged | Notice | ApplicationSubmitted


class CourtKeys(Protocol):
    """Wrap a case's court-bound recordings' data keys to a court (recordings.court_share implements it)."""

    async def wrap_case(self, case_code: str, court_id: str, *, actor: str) -> list[str]: ...


async def record_notice(db: Database, notice: Notice, body: dict[str, Any], delivered: list[str]) -> None:
    async with db.session() as s:
        await audit.append(s, actor="system", action=NOTICE, subject=notice.subject,
                           detail={**body, "delivered_to": delivered})


async def record_delivery(db: Database, subject: str, body: dict[str, Any], delivered: list[str], node: str
                          ) -> None:
    """A notice recorded by the node that sent it reached people connected to another node (the session's owner)."""
    async with db.session() as s:
        await audit.append(s, actor="system", action=NOTICE_DELIVERED, subject=subject,
                           detail={"kind": body.get("kind"), "at": body.get("at"), "delivered_to": delivered,
                                   "node": node})


async def notifications(s: AsyncSession, case_code: str) -> list[dict[str, Any]]:
    """The notices sent to the parties of a case (the list a party page reads back)."""
    entries = await audit.entries_for(s, f"case:{case_code}/")
    return [{k: v for k, v in json.loads(e.detail).items() if k != "delivered_to"}
            for e in entries if e.action == NOTICE]
