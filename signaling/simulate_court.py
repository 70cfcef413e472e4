"""The agreement and court part of `onedoor simulate`, through the real protocol: the mediator drafts from a
template and fills definite terms, finalizes; every party bot signs with the device key it joined with; the
mediator signs (the center seals); the mediator starts the joint application, every party signs it; the demo
judge accepts and confirms; the bundle is fetched over HTTP, written to disk and verified offline.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from mediation import cases
from mediation.agreements import zipfmt
from mediation.agreements.verify import averify_bundle
from recordings.sources import screen_owner
from signaling.cli_server import DEMO_PASSWORD
from signaling.cli_verify import Documents, Recordings
from signaling.client import ProtocolError, SessionClient
from signaling.services import Services

log = logging.getLogger(__name__)
COURT = "court-huangzhong"  # the demo judge's court (signaling.cli.make_demo), a development court
SIGN_TIMEOUT = 60.0  # the last signature seals the PDF (PAdES + timestamp): allow for a loaded machine


async def complete_people(sv: Services, case_code: str) -> None:
    """The demo case has names, phones and addresses; an agreement also needs ID numbers (R15, R23), which the
    intake clerk records. Synthetic, clearly fake numbers."""
    await cases.fill_demo_identities(sv.db, case_code)


def definite_terms(content: dict[str, Any]) -> dict[str, Any]:
    """The neighbours template filled for the demo dispute (a leaking bathroom), every term definite."""
    c = copy.deepcopy(content)
    obligor, obligee = c["terms"][0]["obligor"], c["terms"][0]["obligee"]
    due = (dt.date.today() + dt.timedelta(days=20)).isoformat()
    place = "青海省西宁市湟中区鲁沙尔镇"
    c["facts"] = "双方系上下楼邻居。2026年1月起，B方卫生间漏水致A方天花板受损，经多次协商未果，申请调解。"
    c["responsibility"] = {"A": "A方无过错。", "B": "B方未及时维修卫生间管道，应承担全部赔偿责任。"}
    c["terms"] = [
        {"obligor": obligor, "obligee": obligee, "kind": "act", "what": "修复卫生间防水层并恢复A方天花板原状",
         "method": "委托有资质的施工单位施工", "place": place, "deadline": due},
        {"obligor": obligor, "obligee": obligee, "kind": "payment", "what": "赔偿A方财产损失", "amount": "2600.00",
         "currency": "CNY", "method": "银行转账至A方账户", "place": place, "deadline": due},
    ]
    c["performance"] = {"method": "按上述约定履行", "place": place, "deadline": due}
    return c


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def _sign(c: SessionClient, event: str) -> dict[str, Any]:
    got = await c.call(f"{event}:payload")
    sig = c.device_key.sign(base64.b64decode(got["payload"]))
    return await c.call(f"{event}:sign", {"signature": sig}, limit=SIGN_TIMEOUT)


def _recording_contents(members: dict[str, bytes], meta: dict[str, Any]) -> dict[str, Any]:
    """One recording in the bundle: its streams from the signed manifest, the shared screens' named apart."""
    body = json.loads(members[meta["manifest"]])["manifest"]
    streams = [st["stream_id"] for st in body["streams"]]
    return {"dir": meta["dir"], "recording_id": body["recording_id"], "streams": len(streams),
            "screen_streams": sorted(st["stream_id"] for st in body["streams"]
                                     if screen_owner(st["source_id"]) is not None),
            "files": sum(1 for k in members if k.startswith(meta["dir"] + "/files/"))}


async def agree_and_confirm(sv: Services, base: str, case_code: str, mediator: SessionClient,
                            parties: list[SessionClient], clients: list[SessionClient], out_dir: Path
                            ) -> dict[str, Any]:
    await complete_people(sv, case_code)
    d = (await mediator.call("agreement:draft", {"template": "neighbours"}))["agreement"]
    upd = (await mediator.call("agreement:update", {"content": definite_terms(d["content"]),
                                                    "base_version": d["current_version"], "note": "模拟：填写条款"}))
    if upd["agreement"]["problems"]:
        raise ProtocolError({"code": "draft_incomplete", "message": str(upd["agreement"]["problems"])})
    final = (await mediator.call("agreement:finalize", limit=SIGN_TIMEOUT))["agreement"]
    for p in parties:
        await _sign(p, "agreement")
    signed = await mediator.call("agreement:sign-mediator", limit=SIGN_TIMEOUT)
    started = await mediator.api("POST", f"/api/cases/{case_code}/application", {"court_id": COURT})
    app_id = started["application"]["id"]
    for p in parties:
        applied = await _sign(p, "application")
    if applied["status"] != "submitted":  # say what held it back (the seal, a signature), not just "draft"
        state = await mediator.api("GET", f"/api/cases/{case_code}/agreement")
        raise ProtocolError({"code": "not_submitted", "message": json.dumps({
            "agreement": (state.get("agreement") or {}).get("status"), "signed": signed.get("status"),
            "missing": (state.get("application") or {}).get("missing"), "workflow": state.get("workflow")},
            ensure_ascii=False)})
    judge = SessionClient(base)
    clients.append(judge)
    await judge.login("judge", DEMO_PASSWORD)
    queue = (await judge.api("GET", "/api/court/queue"))["queue"]
    await judge.api("GET", f"/api/court/applications/{app_id}")
    await judge.api("POST", f"/api/court/applications/{app_id}/accept")
    ruling = (await judge.api("POST", f"/api/court/applications/{app_id}/rule", {"outcome": "confirmed", "reasoning": "经审查，协议系双方自愿达成，内容不违反法律规定"}))["ruling"]
    async with judge.http.get(f"{base}/api/court/applications/{app_id}/bundle",
                              params={"reason": "simulation"}) as r:
        if r.status != 200:
            raise ProtocolError((await r.json())["error"])
        data = await r.read()
    path = out_dir / f"{case_code}-bundle.zip"
    await asyncio.to_thread(_write, path, data)
    court_key = sv.courts.recording_key(COURT)
    members = await asyncio.to_thread(zipfmt.read, data)
    docs = Documents(court_key)
    report = await averify_bundle(data, sv.keys.fingerprint, verify_recording=Recordings(members, court_key, None),
                                  verify_document=docs)
    manifest = json.loads(members["manifest.json"])
    if not report.ok:
        log.error("bundle verification failed:\n%s", report.text())
    return {
        "agreement": {"id": final["id"], "version": final["final_version"], "status": signed["status"],
                      "sealed": signed["sealed"], "signatures": len(parties) + 1},
        "application": {"id": app_id, "court": COURT, "status": applied["status"],
                        "queued": any(x["application_id"] == app_id for x in queue)},
        "ruling": {"outcome": ruling["outcome"], "court_key_fingerprint": ruling["court_key_fingerprint"]},
        "bundle": str(path.absolute()),
        "bundle_contents": {
            "documents": [{"id": d["id"], "filename": d["filename"], "sha256": d["sha256"]}
                          for d in manifest["documents"]],
            "transcripts": [{"session": t["session"], "sha256": t["sha256"],
                             "signers": sorted(x["signer"] for x in manifest["signers"]
                                               if x["context"] == f"transcript:{t['session']}")}
                            for t in manifest["transcripts"]],
            "recordings": [_recording_contents(members, r) for r in manifest["recordings"]]},
        "verify": {"ok": report.ok, "failed_item": report.failed_item, "checks": len(report.lines),
                   "shared_screens": [x for x in report.lines if ": shared screen " in x],
                   "center_fingerprint": sv.keys.fingerprint, "documents_decrypted": docs.count,
                   "transcript_responses_valid": sum(1 for x in report.lines
                                                     if ": response of " in x and x.endswith("signature valid"))},
    }
