"""Stages, clocks and the overdue list (R27-R30); the audit chain detects tampering (R10)."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys

import pytest
from sqlalchemy import delete, select, update

from mediation import audit, cases
from mediation.audit import AuditEntry, AuditHead
from mediation.models import Case
from signaling.client import ProtocolError
from tests.conftest import World

PEOPLE = [{"side": "A", "name": "甲"}, {"side": "B", "name": "乙"}]


async def test_case_intake_stages_and_termination(world: World) -> None:
    m = await world.staff("mediator", session=False)
    out = await m.api("POST", "/api/cases", {"title": "拖欠工资", "category": "wages", "channel": "petition",
                                             "people": [*PEOPLE, {"side": "A", "name": "代理人", "kind": "agent",
                                                                  "represents": 0}]})
    code = out["case"]["code"]
    assert code.startswith("QH-HX-") and code.endswith("000002")
    assert [c["name"] for c in out["case"]["clocks"]] == ["acceptance", "petition_notice", "petition_conclusion"]
    with pytest.raises(ProtocolError) as e:
        await m.api("POST", f"/api/cases/{code}/stage", {"to": "handling"})  # skipping triage
    assert e.value.code == "bad_transition"
    for to in ("triage", "handling", "feedback"):
        await m.api("POST", f"/api/cases/{code}/stage", {"to": to})
    with pytest.raises(ProtocolError) as e:
        await m.api("POST", f"/api/cases/{code}/stage", {"to": "archived"})
    assert e.value.code == "termination_required"
    with pytest.raises(ProtocolError) as e:
        await m.api("POST", f"/api/cases/{code}/terminate", {"reason": "no_agreement"})
    assert e.value.code == "note_required"
    with pytest.raises(ProtocolError) as e:
        await m.api("POST", f"/api/cases/{code}/terminate", {"reason": "gave_up"})
    assert e.value.code == "bad_reason"
    await m.api("POST", f"/api/cases/{code}/terminate", {"reason": "no_agreement", "note": "双方差距过大"})
    await m.api("POST", f"/api/cases/{code}/stage", {"to": "archived"})
    got = await m.api("GET", f"/api/cases/{code}")
    assert [h["to"] for h in got["history"]] == ["intake", "triage", "handling", "feedback", "archived"]
    assert all(h["by"].startswith("staff-") for h in got["history"][1:])
    with pytest.raises(ProtocolError) as e:
        await m.api("POST", f"/api/cases/{code}/stage", {"to": "handling"})
    assert e.value.code == "bad_transition"


@pytest.mark.parametrize("bad", [
    {"people": [{"side": "A", "name": "甲"}, {"side": "A", "name": "乙"}]},  # no side B
    {"category": "alchemy"}, {"channel": "pigeon"},
    {"people": [*PEOPLE, {"side": "B", "name": "代", "kind": "agent", "represents": 0}]},  # agent for other side
])
async def test_case_validation(world: World, bad: dict) -> None:
    m = await world.staff("mediator", session=False)
    body = {"title": "t", "category": "family", "channel": "walk_in", "people": PEOPLE, **bad}
    with pytest.raises(ProtocolError) as e:
        await m.api("POST", "/api/cases", body)
    assert e.value.code in ("missing_side", "bad_category", "bad_channel", "bad_agent")


def test_working_days_and_clocks() -> None:
    fri = dt.datetime(2026, 11, 20, 9, tzinfo=dt.UTC)
    assert cases.add_working_days(fri, 3) == dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC)  # Wed
    c = Case(code="X", created_at=fri, channel="walk_in", stage="intake", accepted_at=None, closed_at=None)
    (acc,) = cases.clocks(c)
    assert not acc.overdue(fri + dt.timedelta(days=4)) and acc.overdue(fri + dt.timedelta(days=6))
    c.accepted_at = fri + dt.timedelta(days=1)
    assert not cases.clocks(c)[0].overdue(fri + dt.timedelta(days=60))
    assert cases.clocks(c)[1].overdue(fri + dt.timedelta(days=32))


async def test_overdue_list(world: World) -> None:
    async with world.services.db.session() as s:
        case = await cases.get_case(s, world.case_code)
        case.created_at = dt.datetime.now(dt.UTC) - dt.timedelta(days=10)
    m = await world.staff("mediator", session=False)
    late = await m.api("GET", "/api/cases/overdue")
    assert late["cases"] == [{"code": world.case_code, "title": "邻里漏水纠纷", "overdue": ["acceptance"]}]
    await m.api("POST", f"/api/cases/{world.case_code}/stage", {"to": "triage"})
    assert (await m.api("GET", "/api/cases/overdue"))["cases"] == []


async def _verify(world: World) -> audit.VerifyReport:
    async with world.services.db.session() as s:
        return await audit.verify(s, world.services.keys.public_key)


async def test_audit_chain_detects_edit_delete_reorder(world: World) -> None:
    db = world.services.db
    async with db.session() as s:
        await audit.checkpoint(s, world.services.keys.signing_key)
        for i in range(3):
            await audit.append(s, actor="t", action="x", subject=f"t:{i}")
    assert (await _verify(world)).ok

    async with db.session() as s:  # edit
        await s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor="someone-else"))
    rep = await _verify(world)
    assert not rep.ok and any("entry 3: content edited" in p for p in rep.problems)
    async with db.session() as s:
        await s.execute(update(AuditEntry).where(AuditEntry.seq == 3).values(actor="test"))
    assert (await _verify(world)).ok, (await _verify(world)).problems

    async with db.session() as s:  # reorder: swap the contents of the last two entries
        head = await s.get(AuditHead, 1)
        assert head
        last = head.seq
        e1, e2 = await s.get(AuditEntry, last - 1), await s.get(AuditEntry, last)
        assert e1 and e2 and e1.subject != e2.subject
        e1.subject, e2.subject = e2.subject, e1.subject
    assert not (await _verify(world)).ok
    async with db.session() as s:
        e1, e2 = await s.get(AuditEntry, last - 1), await s.get(AuditEntry, last)
        assert e1 and e2
        e1.subject, e2.subject = e2.subject, e1.subject
    assert (await _verify(world)).ok

    async with db.session() as s:  # truncate past the signed checkpoint and rewind the head to match
        cp = (await s.scalars(select(audit.AuditCheckpoint))).one()
        cut = cp.seq - 2
        await s.execute(delete(AuditEntry).where(AuditEntry.seq > cut, AuditEntry.seq != cp.seq))
        await s.execute(delete(AuditEntry).where(AuditEntry.seq == cp.seq))
        prev = await s.get(AuditEntry, cut)
        head = await s.get(AuditHead, 1)
        assert prev and head
        head.seq, head.hash = cut, prev.hash
    rep = await _verify(world)
    assert not rep.ok and any(p.startswith(f"checkpoint {cp.seq}") for p in rep.problems), rep.problems


async def test_audit_verify_cli_finds_deleted_entry(world: World) -> None:
    async with world.services.db.session() as s:
        await s.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    st = world.services.settings
    # a separate process on purpose: the operator's CLI on the server's data
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signaling.cli", "audit", "verify", "--data-dir", str(st.data_dir),
        "--key-dir", str(st.key_dir), "--database-url", st.db_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1 and "entry 2: missing" in out.decode(), out.decode() + err.decode()
