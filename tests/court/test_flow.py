"""The whole flow through the real server and protocol (issue 5): a recorded session, the agreement drafted live,
signed by each party with the device key it joined with, signed by the mediator and sealed; the joint application
signed by both parties; the court accepts, questions, rules; the bundle is fetched only by that court's judge,
every fetch audited, and `onedoor verify` accepts it offline and exports the recording with the court's key."""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pypdf
import pytest

from media.bots import Bot
from media.channels import SocketIOChannel
from mediation import accounts, audit
from mediation.agreements import seal
from mediation.agreements.verify import averify_bundle
from mediation.models import Center
from recordings.manifest import check_stream, verify_manifest
from signaling.client import ProtocolError
from tests.conftest import PASSWORD, World

from .helpers import COURT, complete_people, draft_and_finalize, http_status, party_sign


def latest(c: Any, event: str) -> dict[str, Any]:
    return dict(c.events[event][-1]) if c.events[event] else {}


async def record_briefly(world: World, clients: list[Any]) -> str:
    m = clients[0]
    bots = {c.pid: Bot(c.pid, SocketIOChannel(c.sio)) for c in clients}
    try:
        for bot in bots.values():
            await bot.join()
        rid = str((await m.call("recording:start", {}))["recording"])
        await asyncio.sleep(2.5)
        await m.call("chat:send", {"text": "B方同意赔偿3800元并修复防水层"})
        stopped = await m.call("recording:stop", {"reason": "达成一致，开始起草协议"})
        assert stopped["segments"] > 0
    finally:
        for bot in bots.values():
            await bot.close()
    return rid


@pytest.mark.timeout(240)
async def test_draft_to_ruling_and_bundle(world: World, tmp_path: Path) -> None:
    sv = world.services
    people = await complete_people(world)
    m, a, b = await world.trio()
    rid = await record_briefly(world, [m, a, b])

    # --- R15: drafted live, every admitted participant sees each version ---
    await draft_and_finalize(m, people)
    for c in (a, b):
        await c.wait(lambda c: latest(c, "agreement:state").get("agreement", {}).get("status") == "final")
    final = latest(a, "agreement:state")["agreement"]
    assert final["final_version"] == 2 and final["pdf_sha256"] and final["content"]["terms"][1]["amount"] == "3800.00"

    # --- R16/R17: signatures with the bound device keys; the last party signature makes it effective ---
    assert (await party_sign(a))["status"] == "final"
    await m.call("agreement:sign-mediator")
    signed = await party_sign(b)
    assert signed["effective"] and signed["sealed"], signed
    await a.wait(lambda c: latest(c, "agreement:state")["agreement"]["status"] == "sealed")
    sealed = latest(a, "agreement:state")["agreement"]
    assert sealed["effective_at"] and sealed["effect_tsa_time"] and not sealed["unsigned_parties"]
    # --- the console: agreement, integrity, deadline, courts; the sealed PDF (PAdES, Chinese text) ---
    med = await world.staff("mediator", session=False)
    med_id = await user_id(med)
    assert {s["signer"]: s["role"] for s in sealed["signatures"]} == {
        f"person:{people['A']}": "party", f"person:{people['B']}": "party", f"staff:{med_id}": "mediator"}
    got = await med.api("GET", f"/api/cases/{world.case_code}/agreement")
    assert got["integrity"] == [] and got["eligibility"]["eligible"] is True
    assert got["deadline"]["days_left"] in (29, 30) and COURT in [c["court_id"] for c in got["courts"]]
    status, pdf = await http_status(med, "GET", f"/api/cases/{world.case_code}/agreement/pdf?sealed=1")
    assert status == 200 and pdf[:5] == b"%PDF-"
    st = await seal.validate_seal(pdf, [sv.notary.pki.root.cert_der], sv.notary.tsa.roots)
    assert st.ok and st.pades_level == "B-LT", st.summary
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages).replace("\n", "")
    for needle in ("人民调解协议书", "张三", "李四", "3800.00", "修复卫生间防水层", world.case_code,
                   sv.keys.fingerprint):
        assert needle in text, needle

    # --- R21-R23: the application, signed by both parties in the session; a court without jurisdiction refused ---
    with pytest.raises(ProtocolError) as e:
        await med.api("POST", f"/api/cases/{world.case_code}/application", {"court_id": "court-chengdong"})
    assert e.value.code == "no_jurisdiction"
    started = await med.api("POST", f"/api/cases/{world.case_code}/application", {"court_id": COURT})
    assert started["application"]["status"] == "draft" and started["deadline"]["expired"] is False
    app_id = started["application"]["id"]
    await party_sign(a, "application")
    assert (await party_sign(b, "application"))["status"] == "submitted"
    await a.wait(lambda c: any(n["kind"] == "application_submitted" for n in c.events["court:notice"]))
    assert a.events["court:notice"][-1]["recordings_shared"] == 1  # the recording's key is wrapped to the court

    # --- the court: queue with clocks, the file (each view logged), accept, questioning, ruling ---
    judge = await world.staff("judge", session=False)
    q = await judge.api("GET", "/api/court/queue")
    item = next(x for x in q["queue"] if x["application_id"] == app_id)
    assert item["status"] == "submitted" and item["due_at"] == item["acceptance_due"] and not item["overdue"]
    file = await judge.api("GET", f"/api/court/applications/{app_id}")
    assert [r["id"] for r in file["recordings"]] == [rid] and file["integrity"] == []
    assert any("3800" in t["text"] for t in file["transcript"])
    await judge.api("POST", f"/api/court/applications/{app_id}/accept")
    qs = await judge.api("POST", f"/api/court/applications/{app_id}/questioning", {"note": "询问双方是否自愿"})
    assert qs["session"]["kind"] == "questioning" and len(qs["invites"]) == 2
    assert all("/join#" in i["link"] for i in qs["invites"])
    # the file names the questioning and its session (the portal's "join" after a reload), never its links
    again = (await judge.api("GET", f"/api/court/applications/{app_id}"))["questionings"]
    assert [(x["id"], x["note"], x["session"]) for x in again] == [
        (qs["questioning"], "询问双方是否自愿", {"id": qs["session"]["id"], "kind": "questioning", "state": "scheduled"})]
    assert "link" not in str(again)
    with pytest.raises(ProtocolError) as e:
        await judge.api("POST", f"/api/court/applications/{app_id}/rule",
                            {"outcome": "rejected", "reasoning": "经审查"})
    assert e.value.code == "invalid_ground"
    ruled = await judge.api("POST", f"/api/court/applications/{app_id}/rule",
                            {"outcome": "confirmed", "reasoning": "双方自愿，内容合法"})
    assert ruled["ruling"]["outcome"] == "confirmed" and ruled["application"]["status"] == "confirmed"
    await a.wait(lambda c: any(n["kind"] == "ruling" for n in c.events["court:notice"]))
    kinds = [n["kind"] for n in (await a.call("agreement:get"))["notifications"]]
    assert kinds == ["application_submitted", "application_accepted", "questioning_scheduled", "ruling"]

    # --- the bundle: only the receiving court's judge; every fetch (and refusal) audited ---
    async with sv.db.session() as s:
        center = await s.get(Center, 1)
        assert center
        await accounts.create_user(s, center, username="judge-other", password=PASSWORD, role="court_judge",
                                   display_name="外院法官", actor="test", court_id="other-court")
    other = await world.staff("judge-other", session=False)
    path = f"/api/court/applications/{app_id}/bundle"
    assert (await http_status(other, "GET", path))[0] == 403
    assert (await http_status(other, "GET", f"/api/court/applications/{app_id}"))[0] == 403
    for name in ("mediator", "admin", "clerk"):
        assert (await http_status(await world.staff(name, session=False), "GET", path))[0] == 403, name
    assert (await http_status(world.client(), "GET", path))[0] == 401
    status, data = await http_status(judge, "GET", path + "?reason=审查")
    assert status == 200 and data[:2] == b"PK"
    async with sv.db.session() as s:
        trail = await audit.entries_for(s, f"case:{world.case_code}/application:{app_id}")
    assert [e.actor for e in trail if e.action == "bundle.fetch"] == [f"staff:{await user_id(judge)}"]
    assert [e.actor for e in trail if e.action == "bundle.fetch_refused"] == [f"staff-{await user_id(other)}"]
    assert {json.loads(e.detail)["what"] for e in trail if e.action == "judge_viewed"} >= {
        "application", "agreement", "transcript", "recording", "audit"}

    def verify_recording(files: dict[str, bytes], manifest: dict[str, Any]) -> list[str]:
        body = verify_manifest(manifest, sv.keys.public_key)
        problems = [p for st in body["streams"] for p in check_stream(body, st["stream_id"],
                                                                      files[st["stream_id"] + ".odr"])]
        assert not problems, problems
        return [f"{len(body['streams'])} streams match"]

    report = await averify_bundle(data, sv.keys.fingerprint, verify_recording=verify_recording)
    assert report.ok, report.text()
    assert any(line.startswith("recording recording/1: ") for line in report.lines)

    # --- `onedoor verify`, offline, in its own process; with the court's key it exports the recording ---
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(data)
    out = tmp_path / "court-copy.mkv"
    key = sv.settings.key_dir / "courts" / f"{COURT}-wrap.pem"  # type: ignore[operator]
    r = await asyncio.to_thread(verify_cli, bundle, "--fingerprint", sv.keys.fingerprint, "--court-key", str(key),
                                "--export", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "VALID" in r.stdout and "ruling: 裁定确认调解协议有效" in r.stdout and out.stat().st_size > 10_000
    tampered = tmp_path / "tampered.zip"
    raw = bytearray(data)
    raw[data.index(b"3800.00")] ^= 1
    tampered.write_bytes(bytes(raw))
    r = await asyncio.to_thread(verify_cli, tampered, "--fingerprint", sv.keys.fingerprint)
    assert r.returncode == 1 and "INVALID" in r.stdout, r.stdout + r.stderr


async def user_id(c: Any) -> int:
    return int((await c.api("GET", "/api/auth/me"))["user"]["id"])


def verify_cli(bundle: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "signaling.cli", "verify", str(bundle), *args],
                          capture_output=True, text=True, timeout=120)
