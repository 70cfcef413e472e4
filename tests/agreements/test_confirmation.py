"""R21-R26: eligibility, venue, the 30-day window, the joint application and package, the court's clocks and
the signed ruling."""

from __future__ import annotations

import base64
import datetime as dt
import json

import pytest

from mediation.agreements import agreement, confirmation, judging, package, payloads
from mediation.agreements.courts import suggest_courts
from mediation.audit import entries_for
from mediation.db import Database
from mediation.errors import Expired, Forbidden, InvalidInput

from .conftest import World, make_world
from .helpers import apply_sign, filled_content, sealed_agreement, submitted_application


async def test_court_suggestions_follow_cpl_205(world: World) -> None:
    view = await sealed_agreement(world)
    async with world.db.session() as s:
        sugg = await confirmation.suggest_court(s, view.id, world.courts)
    ids = [x.court_id for x in sugg]
    # party A and the center are in 湟中区, party B in 城东区; the intermediate court is never suggested
    assert ids == ["court-huangzhong", "court-chengdong"]
    assert len(sugg[0].reasons) == 2
    referred = suggest_courts(world.courts, referring_court_id="court-chengzhong", party_addresses=["湟中区"])
    assert [x.court_id for x in referred] == ["court-chengzhong"]


async def test_full_application_accept_and_confirm(world: World) -> None:
    view = await sealed_agreement(world)
    app = await submitted_application(world, view)
    assert app.status == "submitted" and app.acceptance_due == app.submitted_at + dt.timedelta(days=3)  # type: ignore[operator]
    async with world.db.session() as s:
        pkg = await package.application_package(s, app.id)
        assert pkg.missing == []
        assert {"application.json", "application-signatures.json", "agreement-sealed.pdf", "mediation-proof.json",
                "parties.json"} <= set(pkg.files)
        # the power of attorney is the case file's (encrypted there): the package names it by id and hash
        refs = json.loads(pkg.files["documents.json"])
        assert [(r["kind"], r["person_id"]) for r in refs] == [("power_of_attorney", world.people["B-agent"])]
        assert not any(n.startswith("power_of_attorney/") for n in pkg.files)  # no plaintext copy of it
        queue = await judging.judge_queue(s, judge_id=world.judge_id)
        assert [q.application_id for q in queue] == [app.id] and queue[0].due_at == app.acceptance_due
        assert await judging.judge_queue(s, judge_id=world.other_judge_id) == []
        with pytest.raises(Forbidden):
            await judging.accept(s, app.id, judge_id=world.other_judge_id)
        await judging.record_view(s, app.id, judge_id=world.judge_id, what="package")
        await judging.accept(s, app.id, judge_id=world.judge_id)
        await judging.schedule_questioning(s, app.id, judge_id=world.judge_id,
                                           at=dt.datetime.now(dt.UTC) + dt.timedelta(days=2))
        due = await judging.extend(s, app.id, judge_id=world.judge_id, reason="院长批准：需补充询问")
        ruling = await judging.rule(s, app.id, judge_id=world.judge_id, outcome="confirmed", courts=world.courts)
        actions = [e.action for e in await entries_for(s, f"case:{world.case_code}/application")]
    assert due - ruling.ruled_at > dt.timedelta(days=24)
    court = world.courts.get("court-huangzhong")
    court.ruling_key.verify(base64.b64decode(ruling.signature), judging.ruling_message(ruling.document))
    assert ruling.document["outcome_label"] == "裁定确认调解协议有效"
    assert ruling.document["sealed_pdf_sha256"]
    assert actions.count("judge_viewed") == 1 and actions[-1] == "court.rule"


async def test_rejection_needs_a_ground_from_the_list(world: World) -> None:
    view = await sealed_agreement(world)
    app = await submitted_application(world, view)
    async with world.db.session() as s:
        await judging.accept(s, app.id, judge_id=world.judge_id)
        with pytest.raises(InvalidInput) as e:
            await judging.rule(s, app.id, judge_id=world.judge_id, outcome="rejected", ground="dislike",
                               courts=world.courts)
        assert e.value.code == "invalid_ground"
        r = await judging.rule(s, app.id, judge_id=world.judge_id, outcome="rejected", ground="not_voluntary",
                               reasoning="询问中B方称受胁迫", courts=world.courts)
    assert r.document["ground_label"] == "违背自愿原则"


async def test_overdue_clocks_show_in_the_queue(world: World) -> None:
    view = await sealed_agreement(world)
    app = await submitted_application(world, view)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=4)
    async with world.db.session() as s:
        (item,) = await judging.judge_queue(s, judge_id=world.judge_id, now=later)
        assert item.overdue and item.status == "submitted"
        await judging.accept(s, app.id, judge_id=world.judge_id, now=later)
        (item,) = await judging.judge_queue(s, judge_id=world.judge_id, now=later + dt.timedelta(days=14))
        assert not item.overdue and item.due_at == later + dt.timedelta(days=15)
        (item,) = await judging.judge_queue(s, judge_id=world.judge_id, now=later + dt.timedelta(days=16))
        assert item.overdue


async def test_thirty_day_window_is_shown_reminded_and_enforced(world: World) -> None:
    view = await sealed_agreement(world)
    assert view.effective_at is not None
    day29 = view.effective_at + dt.timedelta(days=29)
    day31 = view.effective_at + dt.timedelta(days=31)
    async with world.db.session() as s:
        d = await confirmation.application_deadline(s, view.id)
        assert d.deadline_at == view.effective_at + dt.timedelta(days=30) and d.days_left == 29 and not d.expired
        assert await confirmation.reminders_due(s, within_days=7) == []
        (r,) = await confirmation.reminders_due(s, within_days=7, now=day29)
        assert r.agreement_id == view.id and not r.expired
        (r,) = await confirmation.reminders_due(s, now=day31)
        assert r.expired
        with pytest.raises(Expired) as e:
            await confirmation.start_application(s, view.id, court_id="court-huangzhong", courts=world.courts,
                                                 actor="staff:1", now=day31)
        assert e.value.code == "confirmation_window_passed" and "三十日" in e.value.message
        app = await confirmation.start_application(s, view.id, court_id="court-huangzhong", courts=world.courts,
                                                   actor="staff:1", now=day29)
    await apply_sign(world, app.id, "A", now=day29)
    with pytest.raises(Expired):
        await apply_sign(world, app.id, "B", now=day31)  # B signs too late: the joint application fails


async def test_wrong_court_and_wrong_key_are_refused(world: World) -> None:
    view = await sealed_agreement(world)
    async with world.db.session() as s:
        with pytest.raises(InvalidInput) as e:
            await confirmation.start_application(s, view.id, court_id="court-chengzhong", courts=world.courts,
                                                 actor="staff:1")
        assert e.value.code == "no_jurisdiction"
        app = await confirmation.start_application(s, view.id, court_id="court-chengdong", courts=world.courts,
                                                   actor="staff:1")
        payload = await confirmation.application_payload(s, app.id, person_id=world.people["A"])
        with pytest.raises(InvalidInput) as e2:
            await confirmation.sign_application(s, app.id, person_id=world.people["A"], invite_id=world.invites["A"],
                                                signature_b64=world.devices["B"].sign(payload))
        assert e2.value.code == "bad_signature"
    assert payloads.application_payload_bytes(case_code=world.case_code, application_id=app.id,
                                              document_sha256=app.document_sha256,
                                              signer=f"person:{world.people['A']}") == payload


async def test_ineligible_matters_are_blocked_with_the_reason(db: Database, notary, courts) -> None:  # type: ignore[no-untyped-def]
    w = await make_world(db, notary, courts)
    async with db.session() as s:
        d = await agreement.create_draft(s, w.case_id, template="neighbours", author="staff:1")
        c = filled_content(d, w)
        c["matters"] = {"decides_ownership": True, "special_procedure": False}
        await agreement.update_draft(s, d.id, c, author="staff:1")
        await agreement.finalize(s, d.id, author="staff:1", notary=notary)
        elig = await confirmation.check_eligibility(s, d.id)
    assert not elig.eligible and elig.reasons[0]["code"] == "decides_ownership"
    from mediation.agreements import signing

    for who in ("A", "B"):
        async with db.session() as s:
            p = await signing.signing_payload(s, d.id, person_id=w.people[who])
            await signing.sign_as_party(s, d.id, person_id=w.people[who], invite_id=w.invites[who],
                                        signature_b64=w.devices[who].sign(p), notary=notary)
    async with db.session() as s:
        with pytest.raises(Forbidden) as e:
            await confirmation.start_application(s, d.id, court_id="court-huangzhong", courts=courts, actor="staff:1")
    assert e.value.code == "not_eligible" and "物权" in e.value.message


async def test_missing_items_are_codes_and_one_power_of_attorney_per_applying_agent(world: World) -> None:
    """The pages translate `missing` (no English reaches them); a power of attorney may be added before the agent
    signs, once per applying agent, and only for an agent (R23)."""
    from mediation.agreements import lifecycle
    from mediation.errors import Conflict

    from .helpers import case_file_upload

    view = await sealed_agreement(world)
    async with world.db.session() as s:
        app = await confirmation.start_application(s, view.id, court_id="court-huangzhong", courts=world.courts,
                                                   actor="staff:1")
        assert await package.missing_items(s, app.id) == [{"item": "party_signature", "person_id": world.people[p]}
                                                         for p in ("A", "B")]
        offered = [a.action for a in (await lifecycle.state_of(s, world.case_id)).next_actions if a.ready]
        assert "add_power_of_attorney" in offered  # before the agent signs: B's agent is an applicant
    not_agent = await case_file_upload(world, b"%PDF-1.4 scan", filename="a.pdf", purpose="power_of_attorney",
                                       person_id=world.people["A"])
    async with world.db.session() as s:
        with pytest.raises(InvalidInput) as e:
            await package.attach_document(s, app.id, document_id=not_agent["id"], actor="staff:1")
        assert e.value.code == "not_an_agent"
    await apply_sign(world, app.id, "A")
    await apply_sign(world, app.id, "B-agent")
    async with world.db.session() as s:
        assert await package.missing_items(s, app.id) == [{"item": "power_of_attorney",
                                                          "person_id": world.people["B-agent"]}]
    from .helpers import attach_power_of_attorney

    await attach_power_of_attorney(world, app.id)
    async with world.db.session() as s:
        assert (await confirmation.get_application(s, app.id)).status == "submitted"
        offered = [a.action for a in (await lifecycle.state_of(s, world.case_id)).next_actions if a.ready]
        assert "add_power_of_attorney" not in offered
    again = await case_file_upload(world, b"%PDF-1.4 second scan", filename="b.pdf", purpose="power_of_attorney",
                                   person_id=world.people["B-agent"])
    async with world.db.session() as s:
        with pytest.raises(Conflict):  # submitted: nothing is added any more
            await package.attach_document(s, app.id, document_id=again["id"], actor="staff:1")
