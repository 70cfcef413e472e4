"""Tenancy as data (issue 10 item 1), through the real server: courts and centers are rows the system
administrator creates; a court created through the API is usable at once (a judge of it logs in and sees only
its court); a center admin creates neither courts, centers nor judges, nor staff of another center; bad keys are
422 `invalid_court`; a taken id is 409; and 20 simultaneous creations of one court (or one center code) leave
exactly one winner. Runs on SQLite and, with ONEDOOR_TEST_DATABASE_URL, on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import func, select

from mediation import accounts, audit
from mediation.agreements.courts import DEV_COURTS
from mediation.models import Center, CourtRecord, StaffUser
from signaling.client import ProtocolError, SessionClient
from tests.conftest import PASSWORD, World
from tests.court.helpers import COURT, http_status, party_sign, sealed

N_RACERS = 20


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def court_entry(court_id: str, **over: Any) -> dict[str, Any]:
    """A court's directory entry with fresh keys (the court keeps the private halves)."""
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    return {"id": court_id, "name": "大通回族土族自治县人民法院", "level": "basic", "region": "大通县",
            "address": "青海省西宁市大通县桥头镇",
            "ruling_public_key": _b64(Ed25519PrivateKey.generate().public_key().public_bytes(*raw)),
            "recording_public_key": _b64(X25519PrivateKey.generate().public_key().public_bytes(*raw)), **over}


async def system_admin(world: World) -> SessionClient:
    async with world.services.db.session() as s:
        center = await s.get(Center, 1)
        assert center
        await accounts.create_user(s, center, username="sysadmin", password=PASSWORD, role="system_admin",
                                   display_name="平台管理员", actor="test")
    c = world.client()
    await c.login("sysadmin", PASSWORD)
    return c


async def test_the_dev_courts_are_rows_seeded_at_start_up(world: World) -> None:
    async with world.services.db.session() as s:
        ids = (await s.scalars(select(CourtRecord.id).order_by(CourtRecord.id))).all()
    assert sorted(ids) == sorted(c[0] for c in DEV_COURTS)
    clerk = await world.staff("clerk", session=False)
    status, out = await http_status(clerk, "GET", "/api/courts")
    assert status == 200 and sorted(c["id"] for c in out["courts"]) == sorted(ids)


async def test_system_admin_creates_a_court_and_its_judge_who_sees_only_that_court(world: World) -> None:
    _, a, b, _ = await sealed(world)  # center A's case goes to court 1 (the seeded court-huangzhong)
    mh = await world.staff("mediator", session=False)
    app = (await mh.api("POST", f"/api/cases/{world.case_code}/application", {"court_id": COURT}))["application"]
    await party_sign(a, "application")
    assert (await party_sign(b, "application"))["status"] == "submitted"

    sysadmin = await system_admin(world)
    entry = court_entry("court-datong")
    status, out = await http_status(sysadmin, "POST", "/api/courts", entry)
    assert status == 200 and out["court"] == entry
    async with world.services.db.session() as s:
        row = await s.get(CourtRecord, "court-datong")
        assert row is not None and row.ruling_public_key == entry["ruling_public_key"]
        logged = await audit.entries_for(s, "court:court-datong")
    assert [e.action for e in logged] == ["court.create"] and logged[0].actor.startswith("staff-")
    # usable at once: the intake picker lists it, a case can name it as its referring court, a judge sits in it
    status, listed = await http_status(mh, "GET", "/api/courts")
    assert status == 200 and "court-datong" in [c["id"] for c in listed["courts"]]
    status, _ = await http_status(mh, "POST", "/api/cases", {
        "title": "大通借款纠纷", "category": "contract", "channel": "court", "referring_court_id": "court-datong",
        "people": [{"side": "A", "name": "甲"}, {"side": "B", "name": "乙"}]})
    assert status == 200
    status, out = await http_status(sysadmin, "POST", "/api/users", {
        "username": "judge-datong", "password": "long-enough-password", "role": "court_judge",
        "display_name": "马法官", "court_id": "court-datong"})
    assert status == 200 and out["user"]["court_id"] == "court-datong"

    judge = world.client()
    await judge.login("judge-datong", "long-enough-password")
    status, me = await http_status(judge, "GET", "/api/auth/me")
    assert status == 200 and me["user"]["role"] == "court_judge" and me["user"]["court_id"] == "court-datong"
    status, queue = await http_status(judge, "GET", "/api/court/queue")
    assert status == 200 and queue["court_id"] == "court-datong" and queue["queue"] == []
    status, err = await http_status(judge, "GET", f"/api/court/applications/{app['id']}")
    assert status == 403 and err["error"]["code"] == "other_court"  # court-huangzhong's application
    status, _ = await http_status(judge, "GET", f"/api/cases/{world.case_code}")
    assert status == 403  # a judge has no console
    try:
        await judge.join_staff(world.session_id)  # the case was referred by court-huangzhong, not court-datong
        joined = True
    except ProtocolError as e:
        joined = False
        assert e.code in ("forbidden", "session_not_found"), e.code
    assert not joined
    # the owner of the application still reaches it (the refusal above is the court's scope, not a blanket no)
    owner = await world.staff("judge", session=False)
    assert (await http_status(owner, "GET", f"/api/court/applications/{app['id']}"))[0] == 200


async def test_a_court_another_node_created_is_found_when_the_lookup_misses(world: World) -> None:
    """Several nodes: a court row this node has not loaded (written by another node) is loaded on a miss."""
    entry = court_entry("court-huangyuan", name="湟源县人民法院", region="湟源县")
    async with world.services.db.session() as s:
        s.add(CourtRecord(**entry))
    assert "court-huangyuan" not in world.services.courts.courts
    sysadmin = await system_admin(world)
    status, out = await http_status(sysadmin, "POST", "/api/users", {
        "username": "judge-hy", "password": "long-enough-password", "role": "court_judge",
        "display_name": "韩法官", "court_id": "court-huangyuan"})
    assert status == 200, out
    assert world.services.courts.get("court-huangyuan").name == "湟源县人民法院"


async def test_bad_court_entries_are_invalid_court_and_a_taken_id_conflicts(world: World) -> None:
    sysadmin = await system_admin(world)
    good = court_entry("court-ledu")
    bad = {
        "short ruling key": {"ruling_public_key": _b64(b"x" * 16)},
        "ruling key not base64": {"ruling_public_key": "not base64!!"},
        "short recording key": {"recording_public_key": _b64(b"y" * 31)},
        "recording key not base64": {"recording_public_key": "%%%"},
        "level": {"level": "supreme"},
        "id characters": {"id": "court ledu/1"},
        "empty id": {"id": ""},
        "empty name": {"name": "  "},
    }
    for what, change in bad.items():
        status, err = await http_status(sysadmin, "POST", "/api/courts", {**good, **change})
        assert status == 422 and err["error"]["code"] == "invalid_court", (what, status, err)
    status, err = await http_status(sysadmin, "POST", "/api/courts", {k: v for k, v in good.items() if k != "name"})
    assert status == 422 and err["error"]["code"] == "invalid_input"  # a missing field: the body's schema
    status, err = await http_status(sysadmin, "POST", "/api/courts", court_entry(COURT))  # a seeded court
    assert status == 409 and err["error"]["code"] == "court_exists"
    assert (await http_status(sysadmin, "POST", "/api/courts", good))[0] == 200
    status, err = await http_status(sysadmin, "POST", "/api/courts", good)
    assert status == 409 and err["error"]["code"] == "court_exists"
    async with world.services.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(CourtRecord)) == len(DEV_COURTS) + 1


async def test_a_center_admin_creates_neither_courts_centers_judges_nor_other_centers_staff(world: World) -> None:
    admin = await world.staff("admin", session=False)
    sysadmin = await system_admin(world)
    refused = {
        ("POST", "/api/courts"): court_entry("court-x"),
        ("POST", "/api/centers"): {"code": "QH-X", "name": "某中心", "level": "township", "parent_id": 1},
        ("GET", "/api/centers"): None,
    }
    for (method, path), body in refused.items():
        status, err = await http_status(admin, method, path, body)
        assert status == 403 and err["error"]["code"] == "forbidden", (method, path)
    judge = {"username": "judge-y", "password": "long-enough-password", "role": "court_judge",
             "display_name": "法官", "court_id": COURT}
    status, err = await http_status(admin, "POST", "/api/users", judge)
    assert status == 403 and err["error"]["code"] == "forbidden"

    # the system administrator: a city center, a county center under it, and that county center's admin
    status, city = await http_status(sysadmin, "POST", "/api/centers", {
        "code": "QH-XN", "name": "西宁市社会治理综合服务中心", "address": "西宁市", "level": "city"})
    assert status == 200 and city["center"]["parent_id"] is None
    status, county = await http_status(sysadmin, "POST", "/api/centers", {
        "code": "QH-DT", "name": "大通县社会治理综合服务中心", "address": "西宁市大通县", "level": "county",
        "parent_id": city["center"]["id"]})
    assert status == 200 and county["center"]["parent_id"] == city["center"]["id"]
    b_id = county["center"]["id"]
    status, listed = await http_status(sysadmin, "GET", "/api/centers")
    assert status == 200
    assert {(c["code"], c["level"], c["parent_id"]) for c in listed["centers"]} >= {
        ("QH-HX", "county", None), ("QH-XN", "city", None), ("QH-DT", "county", city["center"]["id"])}
    async with world.services.db.session() as s:
        assert [e.action for e in await audit.entries_for(s, f"center:{b_id}")] == ["center.create"]
    for body, code, expect in (
        ({"code": "QH-DT", "name": "重复", "level": "county"}, "center_exists", 409),
        ({"code": "QH-Y", "name": "乡镇之上的县", "level": "county", "parent_id": b_id}, "bad_parent_level", 422),
        ({"code": "QH-Z", "name": "无上级", "level": "township", "parent_id": 99999}, "center_not_found", 404),
        ({"code": "qh lower", "name": "代码", "level": "county"}, "bad_center_code", 422),
        ({"code": "QH-W", "name": "层级", "level": "village"}, "bad_center_level", 422),
    ):
        status, err = await http_status(sysadmin, "POST", "/api/centers", body)
        assert status == expect and err["error"]["code"] == code, (body, status, err)
    status, _ = await http_status(sysadmin, "POST", "/api/users", {
        "username": "admin-dt", "password": "long-enough-password", "role": "admin", "display_name": "大通管理员",
        "center_id": b_id})
    assert status == 200

    # each center admin manages only its own center's staff
    admin_b = world.client()
    await admin_b.login("admin-dt", "long-enough-password")
    clerk = {"password": "long-enough-password", "role": "intake_clerk", "display_name": "登记员"}
    status, err = await http_status(admin_b, "POST", "/api/users", {**clerk, "username": "clerk-in-a",
                                                                     "center_id": 1})
    assert status == 403 and err["error"]["code"] == "other_center"
    status, err = await http_status(admin, "POST", "/api/users", {**clerk, "username": "clerk-in-b",
                                                                   "center_id": b_id})
    assert status == 403 and err["error"]["code"] == "other_center"
    assert (await http_status(admin_b, "POST", "/api/users", {**clerk, "username": "clerk-b"}))[0] == 200
    assert (await http_status(admin, "POST", "/api/users", {**clerk, "username": "clerk-a", "center_id": 1}))[0] \
        == 200
    async with world.services.db.session() as s:
        from_users = {u: c for u, c in (await s.execute(
            select(StaffUser.username, StaffUser.center_id).where(
                StaffUser.username.in_(["clerk-a", "clerk-b", "admin-dt", "clerk-in-a", "clerk-in-b"])))
        ).all()}
    assert from_users == {"clerk-a": 1, "clerk-b": b_id, "admin-dt": b_id}


async def test_simultaneous_creations_of_one_court_or_one_center_leave_exactly_one(world: World) -> None:
    sysadmin = await system_admin(world)
    entries = [court_entry("court-menyuan", name=f"门源回族自治县人民法院 {i}") for i in range(N_RACERS)]
    results = await asyncio.gather(*(http_status(sysadmin, "POST", "/api/courts", e) for e in entries))
    statuses = sorted(st for st, _ in results)
    assert statuses == [200] + [409] * (N_RACERS - 1), statuses
    assert all(out["error"]["code"] == "court_exists" for st, out in results if st == 409)
    winner = next(out["court"] for st, out in results if st == 200)
    async with world.services.db.session() as s:
        row = await s.get(CourtRecord, "court-menyuan")
        assert row is not None and row.name == winner["name"]
        assert len(await audit.entries_for(s, "court:court-menyuan")) == 1
    assert world.services.courts.get("court-menyuan").name == winner["name"]

    bodies = [{"code": "QH-MY", "name": f"门源县中心 {i}", "level": "county"} for i in range(N_RACERS)]
    results = await asyncio.gather(*(http_status(sysadmin, "POST", "/api/centers", b) for b in bodies))
    assert sorted(st for st, _ in results) == [200] + [409] * (N_RACERS - 1)
    async with world.services.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Center).where(Center.code == "QH-MY")) == 1
