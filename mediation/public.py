"""What anyone may learn from a case code, without logging in (R29, the QR codes printed on documents).

`verify` answers the verification address printed on every agreement (`/verify/<code>`): whether an agreement
with that code exists, its version, status, seal time and the fingerprints a holder compares a PDF against
(SHA-256 of the sealed and of the signed-over renderings, of the content, of the ruling PDF; the center's and
the court's key fingerprints). `case_page` answers the case QR (`/c/<code>`): where the case stands, what happens
next and whom to call. Neither ever returns a name, an ID number, a phone of a person, an address of a person,
the case title or summary (they often name people), or the agreement's content.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from mediation.agreements import judging
from mediation.agreements.courts import CourtDirectory
from mediation.agreements.models import Agreement, ConfirmationApplication
from mediation.agreements.notary import Notary
from mediation.canonical import sha256_hex
from mediation.case_records import CenterContact
from mediation.cases import STAGE_LABELS, Stage
from mediation.db import Database
from mediation.errors import NotFound
from mediation.models import Case, Center
from mediation.service_records import RulingDocument

MAX_CODE = 40
# What happens next, per stage: a key for the page's catalogue (web/js/strings-public.js).
NEXT = {Stage.INTAKE: "intake", Stage.TRIAGE: "triage", Stage.HANDLING: "handling", Stage.FEEDBACK: "feedback",
        Stage.ARCHIVED: "archived"}


def _code(code: str) -> str:
    c = code.strip()
    if not c or len(c) > MAX_CODE or not all(ch.isascii() and (ch.isalnum() or ch == "-") for ch in c):
        raise NotFound("no such case", code="case_not_found")
    return c


class PublicFacts:
    def __init__(self, db: Database, notary: Callable[[], Notary], courts: Callable[[], CourtDirectory]) -> None:
        self.db, self._notary, self._courts = db, notary, courts

    async def _case(self, s: Any, code: str) -> tuple[Case, Center]:
        case = await s.scalar(select(Case).where(Case.code == _code(code)))
        center = await s.get(Center, case.center_id) if case else None
        if case is None or center is None:
            raise NotFound("no such case", code="case_not_found")
        return case, center

    async def verify(self, code: str) -> dict[str, Any]:
        """Facts of the case's latest agreement (and ruling) that a PDF holder checks against; no personal data."""
        async with self.db.session() as s:
            case, center = await self._case(s, code)
            a = (await s.scalars(select(Agreement).where(Agreement.case_id == case.id)
                                 .order_by(Agreement.id.desc()))).first()
            out: dict[str, Any] = {"code": case.code, "center": center.name, "agreement": None, "ruling": None,
                                   "center_key_fingerprint": self._notary().keyring.fingerprint}
            if a is None:
                return out
            final = a.final_version is not None
            out["agreement"] = {
                "id": a.id, "version": a.final_version or a.current_version, "status": a.status,
                "finalized_at": a.finalized_at.isoformat() if a.finalized_at else None,
                "effective_at": a.effective_at.isoformat() if a.effective_at else None,
                "sealed_at": a.sealed_at.isoformat() if a.sealed_at else None,
                "content_sha256": a.content_sha256 if final else None,
                "unsigned_pdf_sha256": a.pdf_sha256 if final else None,
                "sealed_pdf_sha256": sha256_hex(a.sealed_pdf) if a.sealed_pdf else None,
                "tsa_time": a.effect_tsa_time.isoformat() if a.effect_tsa_time else None,
            }
            app = (await s.scalars(select(ConfirmationApplication).where(ConfirmationApplication.agreement_id == a.id)
                                   .order_by(ConfirmationApplication.id.desc()))).first()
            if app is not None:
                court = self._courts().courts.get(app.court_id)
                out["application"] = {"status": app.status, "court": court.name if court else app.court_id}
                ruling = await judging.ruling_for(s, app.id)
                if ruling is not None:
                    doc = await s.get(RulingDocument, ruling.id)
                    out["ruling"] = {
                        "outcome": ruling.outcome, "outcome_label": judging.OUTCOMES[ruling.outcome],
                        "ruled_at": ruling.ruled_at.isoformat(), "court": ruling.document["court"]["name"],
                        "court_key_fingerprint": ruling.court_key_fingerprint,
                        "ruling_sha256": sha256_hex(judging.ruling_message(ruling.document)),
                        "pdf_sha256": doc.sha256 if doc else None, "pdf_signature": doc.signature if doc else None,
                        "objections": ruling.objections,
                    }
            return out

    async def case_page(self, code: str) -> dict[str, Any]:
        """Where a case stands and whom to call: the center's name, address and public phone; no personal data."""
        async with self.db.session() as s:
            case, center = await self._case(s, code)
            contact = await s.get(CenterContact, center.id)
            has_agreement = await s.scalar(select(Agreement.id).where(Agreement.case_id == case.id).limit(1))
            stage = Stage(case.stage)
            return {"code": case.code, "stage": stage.value, "stage_label": STAGE_LABELS[stage],
                    "next": NEXT[stage], "closed": case.closed_at is not None,
                    "has_agreement": has_agreement is not None,
                    "center": {"name": center.name, "address": center.address,
                               "phone": contact.phone if contact else "", "hours": contact.hours if contact else ""}}
