"""The electronic transcript reviewed after the session (R11): a party that left without answering confirms or
disputes it later from the device its invite is bound to (the device proof of "my documents"), signing the same
payload with the same device key; another device gets nothing, one answer per party, and the judge's file reads
the late answer like any other."""

from __future__ import annotations

import base64
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from mediation import transcript
from mediation.devicekeys import DeviceKey, join_message
from mediation.models import Case
from tests.conftest import World

pytestmark = [pytest.mark.timeout(120)]


class Phone:
    """A party's device after the session: the invite token and the device key bound to it, over plain HTTP."""

    def __init__(self, world: World, token: str, key: DeviceKey) -> None:
        self.base, self.token, self.key = world.base_url, token, key

    async def post(self, path: str, extra: dict[str, Any] | None = None) -> tuple[int, Any]:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{self.base}/api/party/challenge", json={"token": self.token}) as r:
                ch = (await r.json())["challenge"]
            body = {"token": self.token, "challenge": ch, "signature": self.key.sign(join_message(ch)), **(extra or {})}
            async with http.post(f"{self.base}{path}", json=body) as r:
                return r.status, await r.json()

    async def answer(self, verdict: str, disputes: list[dict[str, Any]], replace: bool,
                     *, signer: DeviceKey | None = None) -> tuple[int, Any]:
        body = {"verdict": verdict, "disputes": disputes, "recording_may_replace": replace}
        status, got = await self.post("/api/party/transcript/prepare", body)
        assert status == 200, got
        sig = (signer or self.key).sign(base64.b64decode(got["payload"]))
        return await self.post("/api/party/transcript/respond", {**body, "answer_signature": sig})


async def test_a_party_answers_the_transcript_after_the_session_from_its_device(world: World) -> None:
    m, a, b = await world.trio()
    await m.call("transcript:write", {"speaker": "张三", "speaker_id": a.pid, "text": "借款两千元，已还五百元。"})
    await m.call("transcript:write", {"speaker": "李四", "speaker_id": b.pid, "text": "我只借了一千五百元。"})
    phone_b = Phone(world, world.tokens["B"], b.device_key)
    status, early = await phone_b.post("/api/party/transcript")
    assert status == 200 and early == {"session": world.session_id, "closed": False}
    status, err = await phone_b.post("/api/party/transcript/prepare",
                                     {"verdict": "confirmed", "disputes": [], "recording_may_replace": False})
    assert status == 409 and err["error"]["code"] == "transcript_open"
    closed = await m.call("transcript:close")
    # A answers in the session; B leaves without answering, and the session ends
    got = await a.call("transcript:prepare", {"verdict": "confirmed", "disputes": [], "recording_may_replace": True})
    await a.call("transcript:respond", {"verdict": "confirmed", "disputes": [], "recording_may_replace": True,
                                        "signature": a.device_key.sign(base64.b64decode(got["payload"]))})
    await m.call("session:end", {"reason": "调解结束"})
    for c in (m, a, b):
        await c.close()

    # later, on B's phone: its documents list the transcript, unanswered; the transcript itself, joint entries
    status, listing = await phone_b.post("/api/party/documents")
    assert status == 200, listing
    assert listing["transcript"]["closed"] is True and listing["transcript"]["sha256"] == closed["sha256"]
    assert listing["transcript"]["mine"] is None
    status, view = await phone_b.post("/api/party/transcript")
    assert status == 200 and [e["seq"] for e in view["document"]["entries"]] == [1, 2] and view["mine"] is None

    # another device with B's link gets nothing; a signature by another key over the answer is refused
    status, err = await Phone(world, world.tokens["B"], DeviceKey()).post("/api/party/transcript")
    assert status in (401, 403), err
    status, err = await phone_b.answer("confirmed", [], False, signer=DeviceKey())
    assert status == 422 and err["error"]["code"] == "bad_signature"
    status, err = await phone_b.post("/api/party/transcript/prepare", {
        "verdict": "disputed", "disputes": [{"seq": 9, "note": "没有这一段"}], "recording_may_replace": False})
    assert status == 422 and err["error"]["code"] == "bad_dispute"

    # B disputes passage 2, signed by its device key; once only; A answered in the session already
    status, out = await phone_b.answer("disputed", [{"seq": 2, "note": "我借的是两千元，但已还五百元"}], True)
    assert status == 200 and out["verdict"] == "disputed" and out["signer"].startswith("person:"), out
    status, err = await phone_b.answer("confirmed", [], True)
    assert status == 409 and err["error"]["code"] == "already_signed"
    status, err = await Phone(world, world.tokens["A"], a.device_key).answer("confirmed", [], True)
    assert status == 409 and err["error"]["code"] == "already_signed"
    status, view = await phone_b.post("/api/party/transcript")
    assert view["mine"]["verdict"] == "disputed"

    # the judge's file reads both answers, each signature valid, the disputed passage quoted
    async with world.services.db.session() as s:
        case = await s.scalar(select(Case).where(Case.code == world.case_code))
        assert case is not None
        [t] = await transcript.court_view(s, case.id)
    assert [(r["verdict"], r["valid"]) for r in t["responses"]] == [("confirmed", True), ("disputed", True)]
    assert t["responses"][1]["disputes"][0]["passage"] == "我只借了一千五百元。"
    assert t["recording_may_replace"] is True
