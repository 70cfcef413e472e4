"""Shared steps of the agreement tests."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

from mediation.agreements import agreement, signing
from mediation.agreements.agreement import AgreementView

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
    from mediation.agreements import confirmation, package

    async with w.db.session() as s:
        app = await confirmation.start_application(s, view.id, court_id=court_id, courts=w.courts, actor="staff:1")
    await apply_sign(w, app.id, "A")
    out = await apply_sign(w, app.id, "B-agent")
    assert out.status == "draft"  # the agent applied: the power of attorney is still missing
    async with w.db.session() as s:
        await package.add_document(s, app.id, kind="power_of_attorney", filename="授权委托书.pdf",
                                   data=b"%PDF-1.4 scanned power of attorney", actor="staff:1",
                                   person_id=w.people["B-agent"])
        return await confirmation.get_application(s, app.id)
