"""The public answers behind the QR codes leak nothing personal; people are corrected with the GB 11643 checksum
and every correction is audited; intake checks ID numbers, records the personal matter and the referring court."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from mediation import audit
from mediation.cases import normalize_id_number
from mediation.errors import InvalidInput
from mediation.models import Case, Person
from tests.conftest import World
from tests.court.helpers import http_status
from tests.court.test_copies_and_ruling import to_ruling

VALID_ID = "630122199001010019"  # checksum 9
PHONES = ("13800000001", "13800000002")


async def _get(world: World, path: str) -> tuple[int, Any, str]:
    async with aiohttp.ClientSession() as http, http.get(f"{world.base_url}{path}") as r:
        text = await r.text()
        return r.status, (json.loads(text) if r.content_type == "application/json" else None), text


def test_gb11643_checksum() -> None:
    assert normalize_id_number(" 630122199001010019 ") == VALID_ID
    assert normalize_id_number("11010519491231002x") == "11010519491231002X"
    assert normalize_id_number("") == ""
    for bad in ("630122199001010010", "630122199013010019", "63012219900101001", "6301221990010100１9"):
        with pytest.raises(InvalidInput) as e:
            normalize_id_number(bad)
        assert e.value.code == "bad_id_number"


async def test_intake_checks_id_numbers_and_records_matter_and_court(world: World) -> None:
    clerk = await world.staff("clerk", session=False)
    body: dict[str, Any] = {"title": "继承纠纷", "category": "family", "channel": "court",
                            "people": [{"side": "A", "name": "王五", "id_number": "630122199001010010"},
                                       {"side": "B", "name": "赵六"}]}
    status, err = await http_status(clerk, "POST", "/api/cases", {**body, "referring_court_id": "court-huangzhong"})
    assert status == 422 and err["error"]["code"] == "bad_id_number"
    body["people"][0]["id_number"] = VALID_ID
    status, err = await http_status(clerk, "POST", "/api/cases", body)
    assert status == 422 and err["error"]["code"] == "court_required"  # 诉调 names the referring court
    status, err = await http_status(clerk, "POST", "/api/cases", {**body, "referring_court_id": "nowhere"})
    assert status == 404 and err["error"]["code"] == "no_court"
    made = await clerk.api("POST", "/api/cases", {**body, "referring_court_id": "court-huangzhong",
                                                  "personal_matter": "inheritance"})
    case = made["case"]
    assert case["personal_matter"] == "inheritance" and case["personal_status"] is False  # confirmable (R24)
    assert case["referring_court_id"] == "court-huangzhong"
    status_case = await clerk.api("POST", "/api/cases", {**body, "referring_court_id": "court-huangzhong",
                                                         "personal_matter": "status"})
    assert status_case["case"]["personal_status"] is True  # CPL-I 355: not confirmable, paper only
    got = await clerk.api("GET", f"/api/cases/{case['code']}")
    assert got["case"]["personal_matter"] == "inheritance" and got["case"]["people"][0]["id_number"] == VALID_ID


async def test_staff_correct_people_with_the_checksum_and_an_audit_trail(world: World) -> None:
    async with world.services.db.session() as s:
        case = await s.scalar(select(Case).where(Case.code == world.case_code))
        assert case
        pid = (await s.scalars(select(Person.id).where(Person.case_id == case.id).order_by(Person.id))).first()
    clerk = await world.staff("clerk", session=False)
    path = f"/api/cases/{world.case_code}/people/{pid}"
    status, err = await http_status(clerk, "PATCH", path, {"id_number": "630122199001010010"})
    assert status == 422 and err["error"]["code"] == "bad_id_number"
    out = await clerk.api("PATCH", path, {"id_number": VALID_ID.lower(), "phone": "138 0000 0009",
                                          "address": "青海省西宁市湟中区鲁沙尔镇", "reason": "当事人出示身份证更正"})
    assert out["person"]["id_number"] == VALID_ID and out["person"]["phone"] == "13800000009"
    async with world.services.db.session() as s:
        entries = [e for e in await audit.entries_for(s, f"case:{world.case_code}/person:{pid}")
                   if e.action == "person.correct"]
    assert len(entries) == 1 and entries[0].reason == "当事人出示身份证更正"
    detail = json.loads(entries[0].detail)
    assert set(detail["changes"]) == {"id_number", "phone", "address"}
    assert VALID_ID not in entries[0].detail  # masked in the log
    # another center's staff cannot reach the person; a psychologist's role may not correct
    psych = await world.staff("psych", session=False)
    status, _ = await http_status(psych, "PATCH", path, {"phone": "13800000003"})
    assert status == 403
    status, err = await http_status(clerk, "PATCH", f"/api/cases/{world.case_code}/people/99999", {"phone": "1380000"})
    assert status == 404 and err["error"]["code"] == "person_not_found"


@pytest.mark.timeout(180)
async def test_public_pages_answer_without_personal_data(world: World) -> None:
    admin = await world.staff("admin", session=False)
    await admin.api("PUT", "/api/center/contact", {"phone": "0971-2231234", "hours": "工作日 8:30-17:30"})
    status, page, _ = await _get(world, f"/api/public/cases/{world.case_code}")
    assert status == 200 and page["center"]["phone"] == "09712231234" and page["next"] == "intake"
    status, facts, _ = await _get(world, f"/api/public/verify/{world.case_code}")
    assert status == 200 and facts["agreement"] is None

    *_, app_id, _ruled = await to_ruling(world)
    judge = await world.staff("judge", session=False)
    assert (await http_status(judge, "GET", f"/api/court/applications/{app_id}/ruling.pdf"))[0] == 200
    status, facts, text = await _get(world, f"/api/public/verify/{world.case_code}")
    assert status == 200
    a = facts["agreement"]
    assert a["status"] == "sealed" and a["version"] == 2 and a["sealed_at"] and len(a["sealed_pdf_sha256"]) == 64
    assert facts["ruling"]["outcome"] == "confirmed" and len(facts["ruling"]["pdf_sha256"]) == 64
    status, _, case_text = await _get(world, f"/api/public/cases/{world.case_code}")
    async with world.services.db.session() as s:
        people = (await s.scalars(select(Person))).all()
        case = await s.scalar(select(Case).where(Case.code == world.case_code))
        assert case
    secrets = [p.name for p in people] + [p.id_number for p in people if p.id_number] + list(PHONES)
    secrets += [p.address for p in people if p.address] + [case.title]
    for body in (text, case_text):
        for secret in secrets:
            assert secret not in body, secret
    # the pages themselves are static and public
    for path in (f"/verify/{world.case_code}", f"/c/{world.case_code}"):
        status, _, html = await _get(world, path)
        assert status == 200 and "<script" in html
    status, err, _ = await _get(world, "/api/public/verify/NO-SUCH-CODE")
    assert status == 404 and err["error"]["code"] == "case_not_found"
    status, err, _ = await _get(world, "/api/public/cases/" + "x" * 60)
    assert status == 404


async def test_public_answers_are_rate_limited(world: World) -> None:
    seen: list[int] = []
    async with aiohttp.ClientSession() as http:
        for _ in range(40):
            async with http.get(f"{world.base_url}/api/public/cases/NOPE-{len(seen)}") as r:
                seen.append(r.status)
                if r.status == 429:
                    assert int(r.headers["Retry-After"]) >= 1
                    assert (await r.json())["error"]["code"] == "rate_limited"
                    break
    assert seen[-1] == 429 and set(seen[:-1]) == {404}
