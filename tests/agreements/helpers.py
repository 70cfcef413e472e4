"""Shared steps of the agreement tests."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from mediation.access import Actor
from mediation.agreements import agreement, signing
from mediation.agreements.agreement import AgreementView
from mediation.agreements.bundle import DocumentPart
from mediation.documents import CaseFile
from mediation.models import Case
from mediation.permissions import StaffRole
from recordings.documents_store import CourtDocuments, DocumentStore
from recordings.storage import LocalStorage

from .conftest import World


def filled_content(view: AgreementView, w: World) -> dict[str, Any]:
    """A complete, valid wages agreement built on the template draft."""
    c = copy.deepcopy(view.content)
    due = (dt.date.today() + dt.timedelta(days=20)).isoformat()
    c["facts"] = "张三自2025年3月起在西宁某建筑劳务有限公司承建的工地务工，公司拖欠其2025年6月至9月工资。"
    c["responsibility"] = {"A": "A方已按约提供劳动，无过错。", "B": "B方未按时足额支付劳动报酬，应承担全部支付责任。"}
    c["terms"] = [{
        "obligor": w.people["B"], "obligee": w.people["A"], "kind": "payment", "what": "支付拖欠的劳动报酬",
        "amount": "18600.00", "currency": "CNY", "method": "银行转账至A方工资卡（尾号1234）",
        "place": "青海省西宁市", "deadline": due,
    }]
    c["performance"] = {"method": "按上述约定一次性履行", "place": "青海省西宁市湟中区", "deadline": due}
    return c


async def final_agreement(w: World) -> AgreementView:
    async with w.db.session() as s:
        draft = await agreement.create_draft(s, w.case_id, template="wages", author=f"staff:{w.mediator_id}")
        await agreement.update_draft(s, draft.id, filled_content(draft, w), author=f"staff:{w.mediator_id}")
        return await agreement.finalize(s, draft.id, author=f"staff:{w.mediator_id}", notary=w.notary)


async def party_sign(w: World, agreement_id: int, who: str, *, auto_seal: bool = True) -> signing.SignOutcome:
    async with w.db.session() as s:
        payload = await signing.signing_payload(s, agreement_id, person_id=w.people[who])
        return await signing.sign_as_party(
            s, agreement_id, person_id=w.people[who], invite_id=w.invites[who],
            signature_b64=w.devices[who].sign(payload), notary=w.notary, auto_seal=auto_seal,
        )


async def sealed_agreement(w: World) -> AgreementView:
    a = await final_agreement(w)
    async with w.db.session() as s:
        await signing.sign_as_mediator(s, a.id, staff_id=w.mediator_id, notary=w.notary)
    await party_sign(w, a.id, "A")
    out = await party_sign(w, a.id, "B-agent")
    assert out.sealed
    return out.agreement


async def apply_sign(w: World, application_id: int, who: str, now: dt.datetime | None = None):  # type: ignore[no-untyped-def]
    from mediation.agreements import confirmation

    async with w.db.session() as s:
        payload = await confirmation.application_payload(s, application_id, person_id=w.people[who])
        return await confirmation.sign_application(
            s, application_id, person_id=w.people[who], invite_id=w.invites[who],
            signature_b64=w.devices[who].sign(payload), now=now,
        )


async def submitted_application(w: World, view: AgreementView, court_id: str = "court-huangzhong"):  # type: ignore[no-untyped-def]
    from mediation.agreements import confirmation

    async with w.db.session() as s:
        app = await confirmation.start_application(s, view.id, court_id=court_id, courts=w.courts, actor="staff:1")
    await apply_sign(w, app.id, "A")
    out = await apply_sign(w, app.id, "B-agent")
    assert out.status == "draft"  # the agent applied: the power of attorney is still missing
    await attach_power_of_attorney(w, app.id)
    async with w.db.session() as s:
        return await confirmation.get_application(s, app.id)


def document_store(w: World) -> DocumentStore:
    """The case file's encrypted store (one per test session, under the session's key directory)."""
    return DocumentStore(w.notary.keyring, LocalStorage(w.notary.settings.key_dir / "case-documents"))


async def case_file_upload(w: World, data: bytes, **kw: Any) -> dict[str, Any]:
    """Upload into the case file as the case's mediator (mediation.documents.CaseFile)."""
    async with w.db.session() as s:
        case = await s.get(Case, w.case_id)
        assert case is not None
        actor = Actor(f"staff-{w.mediator_id}", StaffRole.MEDIATOR, center_id=case.center_id,
                      staff_id=w.mediator_id)
    return await CaseFile(w.db, document_store(w), b"test-ticket-secret").upload(actor, w.case_code, data=data, **kw)


async def attach_power_of_attorney(w: World, application_id: int) -> dict[str, Any]:
    """B's agent's power of attorney: uploaded once into the case file, then attached to the application."""
    from mediation.agreements import package

    doc = await case_file_upload(w, b"%PDF-1.4 scanned power of attorney", filename="授权委托书.pdf",
                                 purpose="power_of_attorney", person_id=w.people["B-agent"])
    async with w.db.session() as s:
        return await package.attach_document(s, application_id, document_id=doc["id"], actor="staff:1")


async def bundle_documents(w: World, court_id: str) -> list[DocumentPart]:
    """The case file's court-bound documents as the bundle carries them (keys wrapped to the court)."""
    return await CourtDocuments(w.db, document_store(w), w.courts).parts(w.case_code, court_id)
