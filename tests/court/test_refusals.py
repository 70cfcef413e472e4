"""What the server refuses, with clear error codes, through the real protocol: vague terms and stale edits, a
signature by any key but the party's bound device key, edits after signing, personal-status matters (ESL 3),
a refusal to sign (R28), the 30-day window (R21) and ineligible matters (R24)."""

from __future__ import annotations

import base64
import datetime as dt

import pytest
from sqlalchemy import select, update

from mediation.agreements.models import Agreement, AgreementVersion
from mediation.case_records import CaseMatter
from mediation.devicekeys import DeviceKey
from mediation.models import Case
from signaling.client import ProtocolError
from tests.conftest import World

from .helpers import (
    COURT,
    complete_people,
    draft_and_finalize,
    filled,
    http_status,
    party_sign,
    sealed,
)


async def _case_update(world: World, **values: object) -> None:
    async with world.services.db.session() as s:
        await s.execute(update(Case).where(Case.code == world.case_code).values(**values))


@pytest.mark.timeout(120)
async def test_vague_terms_other_keys_and_edits_after_signing(world: World) -> None:
    people = await complete_people(world)
    m, a, b = await world.trio()
    d = (await m.call("agreement:draft", {"template": "neighbours"}))["agreement"]
    assert {p["code"] for p in d["problems"]} >= {"placeholder", "missing_amount", "missing_deadline"}
    with pytest.raises(ProtocolError) as e:
        await a.call("agreement:update", {"content": d["content"], "base_version": 1})
    assert e.value.code == "forbidden"  # parties read the draft, only mediators write it
    vague = await m.call("agreement:update", {"content": filled(d["content"], people, vague=True), "base_version": 1})
    assert [(p["field"], p["code"]) for p in vague["agreement"]["problems"]] == [("terms[1].deadline", "vague_term")]
    await a.wait(lambda c: bool(c.events["agreement:state"])
                 and c.events["agreement:state"][-1]["agreement"]["current_version"] == 2)
    with pytest.raises(ProtocolError) as e:
        await m.call("agreement:finalize")
    assert e.value.code == "vague_term" and e.value.error["detail"]["field"] == "terms[1].deadline"
    with pytest.raises(ProtocolError) as e:  # someone else saved version 2 meanwhile
        await m.call("agreement:update", {"content": filled(d["content"], people), "base_version": 1})
    assert e.value.code == "stale_version"
    with pytest.raises(ProtocolError) as e:
        await a.call("agreement:payload")
    assert e.value.code == "not_final"
    await m.call("agreement:update", {"content": filled(d["content"], people), "base_version": 2})
    await m.call("agreement:finalize")

    # only the key bound to the signer's own invite counts: a fresh key, or B's signature presented by A, fail
    got = await a.call("agreement:payload")
    msg = base64.b64decode(got["payload"])
    for forged in (DeviceKey().sign(msg), b.device_key.sign(msg)):
        with pytest.raises(ProtocolError) as e:
            await a.call("agreement:sign", {"signature": forged})
        assert e.value.code == "bad_signature"
    with pytest.raises(ProtocolError) as e:  # A's own key, but over B's payload
        await a.call("agreement:sign", {"signature": a.device_key.sign(msg.replace(
            f'person:{people["A"]}'.encode(), f'person:{people["B"]}'.encode()))})
    assert e.value.code == "bad_signature"
    await party_sign(a)
    with pytest.raises(ProtocolError) as e:
        await party_sign(a)
    assert e.value.code == "already_signed"

    # after signing, the agreement cannot be edited; a change behind the server's back is detected
    with pytest.raises(ProtocolError) as e:
        await m.call("agreement:update", {"content": filled(d["content"], people), "base_version": 3})
    assert e.value.code == "agreement_frozen"
    med = await world.staff("mediator", session=False)
    assert (await med.api("GET", f"/api/cases/{world.case_code}/agreement"))["integrity"] == []
    async with world.services.db.session() as s:
        a_id = (await s.scalars(select(Agreement.id))).one()
        row = (await s.scalars(select(AgreementVersion).where(AgreementVersion.agreement_id == a_id,
                                                              AgreementVersion.version == 3))).one()
        row.content = row.content.replace("3800.00", "380.00")
    problems = (await med.api("GET", f"/api/cases/{world.case_code}/agreement"))["integrity"]
    assert "final content changed after finalization" in problems
    assert any("does not verify" in p for p in problems)


@pytest.mark.timeout(120)
async def test_personal_status_is_paper_only_and_a_refusal_ends_the_mediation(world: World) -> None:
    people = await complete_people(world)
    m, a, _b = await world.trio()
    await draft_and_finalize(m, people)
    await _case_update(world, personal_status=True)
    for event, payload in (("agreement:payload", {}), ("agreement:sign", {"signature": "AAAA"})):
        with pytest.raises(ProtocolError) as e:
            await a.call(event, payload)
        assert e.value.code == "personal_status_paper_only" and "电子签名法" in e.value.error["message"]
    await _case_update(world, personal_status=False)
    out = await a.call("agreement:refuse", {"note": "赔偿数额太低，不同意"})
    assert out == {"ok": True, "status": "refused", "termination_reason": "party_refused_to_sign"}
    await m.wait(lambda c: c.events["agreement:state"][-1]["agreement"]["status"] == "refused")
    med = await world.staff("mediator", session=False)
    case = (await med.api("GET", f"/api/cases/{world.case_code}"))["case"]
    assert case["termination_reason"] == "party_refused_to_sign"
    with pytest.raises(ProtocolError) as e:
        await party_sign(a)
    assert e.value.code == "no_agreement"


@pytest.mark.timeout(120)
async def test_thirty_day_window_and_ineligible_matters(world: World) -> None:
    m, a, b, _people = await sealed(world)
    med = await world.staff("mediator", session=False)
    path = f"/api/cases/{world.case_code}/application"
    async with world.services.db.session() as s:
        row = (await s.scalars(select(Agreement))).one()
        effective = row.effective_at
        assert effective is not None
        row.effective_at = effective - dt.timedelta(days=31)
    status, body = await http_status(med, "POST", path, {"court_id": COURT})
    assert status == 410 and body["error"]["code"] == "confirmation_window_passed"
    got = await med.api("GET", f"/api/cases/{world.case_code}/agreement")
    assert got["deadline"]["expired"] is True and got["deadline"]["days_left"] == 0
    due = (await med.api("GET", "/api/agreements/reminders"))["reminders"]
    assert [(r["case_code"], r["expired"]) for r in due] == [(world.case_code, True)]
    async with world.services.db.session() as s:
        await s.execute(update(Agreement).values(effective_at=effective))
    await _case_update(world, personal_status=True)
    status, body = await http_status(med, "POST", path, {"court_id": COURT})
    assert status == 403 and body["error"]["code"] == "not_eligible"
    assert body["error"]["detail"]["reasons"][0]["code"] == "personal_status"
    await _case_update(world, personal_status=False)

    # started in time, but signed after the window closed: refused too
    started = await med.api("POST", path, {"court_id": COURT})
    assert started["application"]["status"] == "draft"
    await party_sign(a, "application")
    async with world.services.db.session() as s:
        await s.execute(update(Agreement).values(effective_at=effective - dt.timedelta(days=30, minutes=1)))
    with pytest.raises(ProtocolError) as e:
        await party_sign(b, "application")
    assert e.value.code == "confirmation_window_passed"
    app = (await med.api("GET", f"/api/cases/{world.case_code}/agreement"))["application"]
    assert app["status"] == "draft" and len(app["signed_by"]) == 1 and m.state["session"] == world.session_id


async def test_inheritance_is_signed_on_paper_too(world: World) -> None:
    """ESL art. 3 leaves inheritance out of electronic signatures as it does status matters; unlike them it stays
    judicially confirmable (R24), so intake records it apart (personal_matter "inheritance")."""
    people = await complete_people(world)
    m, a, _b = await world.trio()
    await draft_and_finalize(m, people)
    async with world.services.db.session() as s:
        case = (await s.scalars(select(Case).where(Case.code == world.case_code))).one()
        s.add(CaseMatter(case_id=case.id, personal_matter="inheritance", set_by="test"))
    for event, payload in (("agreement:payload", {}), ("agreement:sign", {"signature": "AAAA"})):
        with pytest.raises(ProtocolError) as e:
            await a.call(event, payload)
        assert e.value.code == "personal_status_paper_only"
    state = await a.call("agreement:get")
    assert state["workflow"]["stage"] == "paper_only", state["workflow"]
