"""Each person's copy (R20) and the ruling as a document (R25, R26), through the real server: after the session has
ended a party downloads, from the device its link is bound to, the agreement as signed and sealed, its application
and the court's signed ruling; another device, a fresh link or a guessed document gets nothing. The court's rule
needs reasoning; the ruling carries the objection windows."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
import json
from typing import Any

import aiohttp
import pypdf
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import select

from mediation import audit
from mediation.agreements.judging import add_months, objection_windows
from mediation.canonical import sha256_hex
from mediation.devicekeys import DeviceKey, join_message
from mediation.service_records import DocumentDelivery
from signaling.client import ProtocolError
from tests.conftest import World

from .helpers import COURT, http_status, party_sign, sealed


class Device:
    """A party's phone after the session: its invite token and the device key bound to it, over plain HTTP."""

    def __init__(self, world: World, token: str, key: DeviceKey) -> None:
        self.base, self.token, self.key = world.base_url, token, key

    async def _proof(self, http: aiohttp.ClientSession) -> dict[str, str]:
        async with http.post(f"{self.base}/api/party/challenge", json={"token": self.token}) as r:
            body = await r.json()
            assert r.status == 200, body
        ch = body["challenge"]
        return {"token": self.token, "challenge": ch, "signature": self.key.sign(join_message(ch))}

    async def post(self, path: str, extra: dict[str, Any] | None = None) -> tuple[int, Any, Any]:
        async with aiohttp.ClientSession() as http:
            body = {**await self._proof(http), **(extra or {})}
            async with http.post(f"{self.base}{path}", json=body) as r:
                data = await r.json() if r.content_type == "application/json" else await r.read()
                return r.status, data, r.headers


async def to_ruling(world: World, reasoning: str = "经审查，双方自愿达成协议，内容不违反法律规定。") -> tuple[Any, ...]:
    m, a, b, _ = await sealed(world)
    med = await world.staff("mediator", session=False)
    app_id = (await med.api("POST", f"/api/cases/{world.case_code}/application", {"court_id": COURT}))[
        "application"]["id"]
    await party_sign(a, "application")
    assert (await party_sign(b, "application"))["status"] == "submitted"
    judge = await world.staff("judge", session=False)
    await judge.api("POST", f"/api/court/applications/{app_id}/accept")
    for body in ({"outcome": "confirmed"}, {"outcome": "confirmed", "reasoning": "   "}):
        status, err = await http_status(judge, "POST", f"/api/court/applications/{app_id}/rule", body)
        assert status == 422 and err["error"]["code"] == "reasoning_required", err
    ruled = await judge.api("POST", f"/api/court/applications/{app_id}/rule",
                            {"outcome": "confirmed", "reasoning": reasoning})
    return m, a, b, med, judge, app_id, ruled


@pytest.mark.timeout(180)
async def test_party_keeps_its_copies_after_the_session(world: World) -> None:
    m, a, b, med, judge, app_id, ruled = await to_ruling(world)
    ob = ruled["ruling"]["objections"]
    ruled_at = dt.datetime.fromisoformat(ruled["ruling"]["ruled_at"])
    assert ob["party"]["due"] == (ruled_at + dt.timedelta(days=15)).isoformat() and ob["party"]["open"]
    assert ob["third_party"]["due"] == add_months(ruled_at, 6).isoformat() and ob["third_party"]["days_left"] >= 180
    await m.call("session:end", {"reason": "调解结束"})
    await a.close()
    await b.close()

    dev_a = Device(world, world.tokens["A"], a.device_key)
    status, listing, _ = await dev_a.post("/api/party/documents")
    assert status == 200, listing
    assert listing["name"] == "张三" and listing["service_consent"] is None
    assert {d["kind"] for d in listing["documents"]} == {"agreement", "agreement_unsigned", "application", "ruling"}
    ruling_entry = next(d for d in listing["documents"] if d["kind"] == "ruling")
    assert ruling_entry["outcome"] == "confirmed" and ruling_entry["objections"]["party"]["open"] is True

    # electronic service only with consent (asked once, logged)
    status, err, _ = await dev_a.post("/api/party/documents/agreement")
    assert status == 403 and err["error"]["code"] == "service_consent_required"
    status, got, _ = await dev_a.post("/api/party/consent", {"granted": True})
    assert status == 200 and got["service_consent"]["granted"] is True

    # the sealed agreement: the very bytes the center holds
    status, pdf, headers = await dev_a.post("/api/party/documents/agreement")
    assert status == 200 and pdf[:5] == b"%PDF-" and "attachment" in headers["Content-Disposition"]
    _, center_copy = await http_status(med, "GET", f"/api/cases/{world.case_code}/agreement/pdf?sealed=1")
    assert sha256_hex(pdf) == sha256_hex(center_copy) == headers["X-Document-SHA256"]

    # the application and the ruling (裁定书): a PDF signed by the court's key, with grounds and reasoning
    status, app_pdf, _ = await dev_a.post("/api/party/documents/application")
    assert status == 200 and app_pdf[:5] == b"%PDF-"
    assert "司法确认申请书" in "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(app_pdf)).pages)
    status, ruling_pdf, headers = await dev_a.post("/api/party/documents/ruling")
    assert status == 200 and ruling_pdf[:5] == b"%PDF-"
    court = world.services.courts.get(COURT)
    court.ruling_key.verify(base64.b64decode(headers["X-Court-Signature"]), ruling_pdf)  # raises if not
    assert isinstance(court.ruling_key, Ed25519PublicKey)
    assert headers["X-Court-Key-Fingerprint"] == court.ruling_key_fingerprint
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(ruling_pdf)).pages).replace("\n", "")
    for needle in ("民事裁定书", "西宁市湟中区人民法院", "裁定确认调解协议有效", "经审查，双方自愿达成协议",
                   "十五日内", "六个月内", world.case_code, "张三", "李四", court.ruling_key_fingerprint):
        assert needle in text, needle

    # the center and the court get the same signed ruling
    status, center_ruling = await http_status(med, "GET", f"/api/cases/{world.case_code}/ruling.pdf")
    assert status == 200 and center_ruling == ruling_pdf
    status, court_ruling = await http_status(judge, "GET", f"/api/court/applications/{app_id}/ruling.pdf")
    assert status == 200 and court_ruling == ruling_pdf

    # each download logged with the time it reached them (after the last byte: the client may be faster)
    for _ in range(100):
        async with world.services.db.session() as s:
            rows = (await s.scalars(select(DocumentDelivery).order_by(DocumentDelivery.delivered_at))).all()
        if len(rows) == 3:
            break
        await asyncio.sleep(0.05)
    async with world.services.db.session() as s:
        assert [r.document for r in rows] == ["agreement", "application", "ruling"]
        assert all(r.invite_id == world.invite_ids["A"] and r.delivered_at for r in rows)
        acts = [e.action for e in await audit.entries_for(s, f"invite:{world.invite_ids['A']}")]
        assert acts.count("copies.delivered") == 3
        consent = [e for e in await audit.entries_for(s, f"case:{world.case_code}")
                   if e.action == "copies.service_consent"]
        assert len(consent) == 1 and json.loads(consent[0].detail)["granted"] is True
    _, listing, _ = await dev_a.post("/api/party/documents")
    assert [d["document"] for d in listing["delivered"]] == ["ruling", "application", "agreement"]
    assert listing["service_consent"]["granted"] is True

    # another device with A's link, B's link on A's device, a replayed challenge, an unknown document
    status, err, _ = await Device(world, world.tokens["A"], DeviceKey()).post("/api/party/documents/agreement")
    assert status == 401 and err["error"]["code"] == "bad_signature"
    status, err, _ = await Device(world, world.tokens["B"], a.device_key).post("/api/party/documents")
    assert status == 401 and err["error"]["code"] == "bad_signature"
    async with aiohttp.ClientSession() as http:
        proof = await dev_a._proof(http)
        for expected in (200, 401):
            async with http.post(f"{world.base_url}/api/party/documents", json=proof) as r:
                assert r.status == expected, await r.text()
    status, err, _ = await dev_a.post("/api/party/documents/bundle")
    assert status == 404
    # B has not consented: B's own device lists but may not download
    dev_b = Device(world, world.tokens["B"], b.device_key)
    status, err, _ = await dev_b.post("/api/party/documents/ruling")
    assert status == 403 and err["error"]["code"] == "service_consent_required"


async def test_a_link_never_opened_or_reissued_gets_nothing(world: World) -> None:
    # the psychologist's link is not a party's; B's link was never bound to a device
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{world.base_url}/api/party/challenge", json={"token": world.tokens["B"]}) as r:
            assert r.status == 403 and (await r.json())["error"]["code"] == "device_not_bound"
        async with http.post(f"{world.base_url}/api/party/challenge", json={"token": "x" * 32}) as r:
            assert r.status == 401 and (await r.json())["error"]["code"] == "bad_invite"
    await world.party("A")
    host = await world.staff("mediator", session=False)
    out = await host.api("POST", f"/api/sessions/{world.session_id}/invites/{world.invite_ids['A']}/reissue")
    assert out["invite"]["link"]
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{world.base_url}/api/party/challenge", json={"token": world.tokens["A"]}) as r:
            assert r.status == 401  # the old link stopped working


def test_objection_windows() -> None:
    t = dt.datetime(2026, 8, 31, 10, tzinfo=dt.UTC)
    ob = objection_windows(t, now=t + dt.timedelta(days=16))
    assert ob["party"]["due"] == "2026-09-15T10:00:00+00:00" and ob["party"]["open"] is False
    assert ob["third_party"]["due"] == "2027-02-28T10:00:00+00:00" and ob["third_party"]["open"] is True


async def test_rule_without_reasoning_is_refused_before_anything_changes(world: World) -> None:
    judge = await world.staff("judge", session=False)
    with pytest.raises(ProtocolError) as e:
        await judge.api("POST", "/api/court/applications/999/rule", {"outcome": "confirmed", "reasoning": ""})
    assert e.value.code == "reasoning_required"
