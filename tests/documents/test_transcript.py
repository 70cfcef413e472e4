"""The electronic transcript (电子笔录, R11) end to end: written live in the session (caucus entries stay
inside, R9), closed, confirmed by one party and disputed by the other with their device keys, read by the judge
with the disputed passage, and carried in the bundle that `onedoor verify` checks offline — with the case file's
photo, encrypted to the court."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest

from mediation.agreements import zipfmt
from mediation.agreements.verify import _transcripts, averify_bundle
from mediation.canonical import sha256_hex
from recordings.documents_store import unseal
from recordings.keywrap import court_unwrap
from signaling.client import ProtocolError, SessionClient
from tests.conftest import World
from tests.court.helpers import COURT, http_status, party_sign, sealed
from tests.documents.helpers import jpeg_with_gps, party_upload

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]


async def answer(c: SessionClient, verdict: str, disputes: list[dict[str, Any]], replace: bool) -> dict[str, Any]:
    body = {"verdict": verdict, "disputes": disputes, "recording_may_replace": replace}
    got = await c.call("transcript:prepare", body)
    return await c.call("transcript:respond", {**body, "signature": c.device_key.sign(base64.b64decode(got["payload"]))})


async def test_transcript_confirmed_disputed_read_by_the_judge_and_verified_offline(world: World) -> None:
    sv = world.services
    m, a, b, _ = await sealed(world)
    photo = await party_upload(a, jpeg_with_gps(), filename="欠条.jpg")
    await a.call("document:show", {"document": photo["id"]})

    # --- written live: every admitted person sees joint entries; a caucus entry stays inside ---
    w1 = await m.call("transcript:write", {"speaker": "张三", "speaker_id": a.pid, "text": "我家天花板从一月起漏水。"})
    w2 = await m.call("transcript:write", {"speaker": "李四", "speaker_id": b.pid, "text": "我已经修过管道了。"})
    assert (w1["seq"], w2["seq"]) == (1, 2) and w2["at_ms"] >= w1["at_ms"] >= 0
    await b.wait(lambda c: len(c.events["transcript:entry"]) == 2)
    await m.call("caucus:open", {"members": [m.pid, a.pid]})
    await m.call("transcript:write", {"speaker": "张三", "text": "其实我可以少要一点。"})
    await a.wait(lambda c: len(c.events["transcript:entry"]) == 3)
    await m.call("caucus:close")
    await m.call("transcript:write", {"speaker": "调解员", "text": "双方同意按协议履行。"})
    await b.wait(lambda c: len(c.events["transcript:entry"]) == 3)
    assert all("少要" not in e["text"] for e in b.events["transcript:entry"])  # at B's client: never arrived
    assert [e["seq"] for e in (await b.call("transcript:get"))["entries"]] == [1, 2, 4]
    with pytest.raises(ProtocolError) as e:
        await a.call("transcript:write", {"speaker": "张三", "text": "我自己写"})
    assert e.value.error["code"] == "forbidden"

    # --- closed for review; each party answers on its own device, signed with its device key ---
    with pytest.raises(ProtocolError) as e:
        await answer(a, "confirmed", [], False)
    assert e.value.error["code"] == "transcript_open"
    closed = await m.call("transcript:close")
    review = await b.wait_event("transcript:review")
    assert review["sha256"] == closed["sha256"] and [x["seq"] for x in review["document"]["entries"]] == [1, 2, 4]
    with pytest.raises(ProtocolError) as e:  # a signature over other bytes (here: another answer) is refused
        got = await a.call("transcript:prepare", {"verdict": "confirmed", "disputes": [], "recording_may_replace": True})
        await a.call("transcript:respond", {"verdict": "confirmed", "disputes": [], "recording_may_replace": False,
                                            "signature": a.device_key.sign(base64.b64decode(got["payload"]))})
    assert e.value.error["code"] == "bad_signature"
    assert (await answer(a, "confirmed", [], False))["verdict"] == "confirmed"
    out = await answer(b, "disputed", [{"seq": 2, "note": "我说的是修过一次，不是修好了"}], True)
    assert out["verdict"] == "disputed"
    resp = await m.wait_event("transcript:response")
    assert resp["signer"].startswith("person:")
    with pytest.raises(ProtocolError) as e:
        await answer(b, "confirmed", [], True)
    assert e.value.error["code"] == "already_signed"

    # --- to the court: the application, then the judge's file and the bundle ---
    med = await world.staff("mediator", session=False)
    started = await med.api("POST", f"/api/cases/{world.case_code}/application", {"court_id": COURT})
    app_id = started["application"]["id"]
    await party_sign(a, "application")
    assert (await party_sign(b, "application"))["status"] == "submitted"
    await a.wait(lambda c: any(n["kind"] == "application_submitted" for n in c.events["court:notice"]))
    assert a.events["court:notice"][-1]["documents_shared"] == 1
    judge = await world.staff("judge", session=False)
    file = await judge.api("GET", f"/api/court/applications/{app_id}")
    (t,) = file["transcripts"]
    assert [e["seq"] for e in t["entries"]] == [1, 2, 4] and t["disputed"] is True
    assert t["recording_may_replace"] is False  # only B agreed (R11: both must)
    disputed = next(r for r in t["responses"] if r["verdict"] == "disputed")
    assert disputed["valid"] and disputed["disputes"][0]["passage"] == "我已经修过管道了。"
    assert disputed["disputes"][0]["note"].startswith("我说的是")
    assert all(r["valid"] for r in t["responses"])
    assert [d["id"] for d in file["documents"]] == [photo["id"]]

    status, data = await http_status(judge, "GET", f"/api/court/applications/{app_id}/bundle?reason=review")
    assert status == 200
    report = await averify_bundle(data, sv.keys.fingerprint)
    assert report.ok, report.text()
    text = report.text()
    assert "disputes passages 2" in text and "confirmed;" in text
    assert f"document {photo['id']}" in text
    files = zipfmt.read(data)
    manifest = json.loads(files["manifest.json"])
    assert [d["id"] for d in manifest["documents"]] == [photo["id"]]
    assert files[f"documents/{photo['id']}/content.odr"][:6] == b"ODREC\x1a"  # carried encrypted
    # the court's private key opens the photo offline
    priv = await asyncio.to_thread(sv.courts.recording_key, COURT)
    dk = court_unwrap(priv, photo["id"], files[f"documents/{photo['id']}/data-key.wrapped"])
    plain = await asyncio.to_thread(unseal, dk, photo["id"], files[f"documents/{photo['id']}/content.odr"])
    assert plain[:3] == b"\xff\xd8\xff" and sha256_hex(plain) == photo["sha256"]

    # a tampered response (B's dispute turned into a confirmation) no longer verifies, even re-listed
    sess = manifest["transcripts"][0]
    responses = json.loads(files[sess["responses"]])
    for r in responses:
        r["payload"] = r["payload"].replace('"disputed"', '"confirmed"')
    keys = {(x["context"], x["signer"]): x for x in manifest["signers"]}
    forged = {**files, sess["responses"]: json.dumps(responses).encode()}
    with pytest.raises(Exception) as err:
        _transcripts(forged, manifest, keys, [])
    assert "response of" in str(err.value)
