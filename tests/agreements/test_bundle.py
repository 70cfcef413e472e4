"""The evidence bundle and its offline verifier: the full flow verifies; any changed byte, swapped or removed
member fails, naming the first failing item; the verifier runs with networking disabled."""

from __future__ import annotations

import asyncio
import base64
import json
import random
from pathlib import Path
from typing import Any

import pytest

from mediation import audit
from mediation.agreements import judging, zipfmt
from mediation.agreements.bundle import Bundle, RecordingPart, build_bundle
from mediation.agreements.verify import averify_bundle, verify_bundle
from mediation.audit import entries_for
from mediation.canonical import canonical_json, sha256_hex
from mediation.errors import Forbidden

from .conftest import World
from .helpers import bundle_documents, sealed_agreement, submitted_application


def recording() -> RecordingPart:
    """Opaque stand-ins for recordings/ output: the bundle carries them as bytes and hash-checks them."""
    segs = {f"seg-{i:06d}.bin": bytes(random.Random(i).randbytes(2000)) for i in range(3)}
    manifest = canonical_json({"type": "onedoor-recording-manifest", "recording_id": "rec-1",
                               "segments": sorted(segs), "signature": "opaque"})
    return RecordingPart(manifest=manifest, files=segs, wrapped_key=b"\x01" * 80, recording_id="rec-1")


async def full_flow(w: World) -> Bundle:
    view = await sealed_agreement(w)
    app = await submitted_application(w, view)
    async with w.db.session() as s:
        await judging.accept(s, app.id, judge_id=w.judge_id)
        await judging.rule(s, app.id, judge_id=w.judge_id, outcome="confirmed", courts=w.courts)
        with pytest.raises(Forbidden):
            await build_bundle(s, app.id, judge_id=w.other_judge_id, notary=w.notary, courts=w.courts)
    async with w.db.session() as s:  # the recording's own entries, and another case's entry in between
        await audit.append(s, actor="recorder", action="recording.segment", subject="recording:rec-1",
                           detail={"sha256": "ab" * 32})
        await audit.append(s, actor="staff:9", action="case.note", subject="case:QH-HX-2026-000999",
                           detail={"secret": "另一案件的隐私"})
        await audit.append(s, actor="recorder", action="recording.stop", subject="recording:rec-1")
    async with w.db.session() as s:
        bundle = await build_bundle(s, app.id, judge_id=w.judge_id, notary=w.notary, courts=w.courts,
                                    recordings=[recording()], reason="审查录音",
                                    documents=await bundle_documents(w, app.court_id))
        fetches = [e for e in await entries_for(s, f"case:{w.case_code}") if e.action == "bundle.fetch"]
    assert len(fetches) == 1 and fetches[0].actor == f"staff:{w.judge_id}"
    return bundle


async def test_full_flow_bundle_verifies_offline(world: World, no_network: None, tmp_path: Path) -> None:
    bundle = await full_flow(world)
    (tmp_path / bundle.filename).write_bytes(bundle.data)
    sync_report = await asyncio.to_thread(verify_bundle, tmp_path / bundle.filename, world.notary.keyring.public_pem())
    assert sync_report.ok, sync_report.text()  # the CLI's entry point: a path, and the pinned key as PEM
    seen: list[tuple[list[str], str]] = []

    def verify_recording(files: dict[str, bytes], manifest: dict[str, Any]) -> list[str]:
        seen.append((sorted(files), manifest["recording_id"]))
        return [f"{len(files)} segments checked"]

    report = await averify_bundle(bundle.data, world.notary.keyring.fingerprint, verify_recording=verify_recording)
    assert report.ok, report.text()
    text = report.text()
    for needle in ("manifest: signed by the center", "timestamp: agreement effective", "PDF seal: PAdES B-LT",
                   "ruling: 裁定确认调解协议有效", "audit chain:", "recording recording/1: 3 segments checked"):
        assert needle in text, needle
    assert seen == [(["seg-000000.bin", "seg-000001.bin", "seg-000002.bin"], "rec-1")]
    assert sum("signature person:" in line for line in report.lines) == 4  # A and B's agent, twice each
    assert any(line.startswith("signature staff:") for line in report.lines)  # the mediator

    # a recording verifier that fails is reported by name
    def bad(files: dict[str, bytes], manifest: dict[str, Any]) -> list[str]:
        raise ValueError("segment 2: authentication tag mismatch")

    r = await averify_bundle(bundle.data, world.notary.keyring.fingerprint, verify_recording=bad)
    assert not r.ok and r.failed_item == "recording recording/1" and "segment 2" in (r.error or "")

    # wrong pinned key: refused before anything else
    r = await averify_bundle(bundle.data, "0000:0000:0000:0000:0000:0000:0000:0000")
    assert not r.ok and r.failed_item == "center key"

    # tampering: >= 1000 sampled byte positions, each must fail
    rng = random.Random(20260505)
    data = bundle.data
    # 1000 uniformly sampled positions, plus every byte of the first header and of the central directory's tail
    positions = [*sorted(rng.sample(range(len(data)), 1000)), *range(64), *range(len(data) - 400, len(data))]
    for pos in positions:
        tampered = bytearray(data)
        tampered[pos] ^= 1 << rng.randrange(8)
        r = await averify_bundle(bytes(tampered), world.notary.keyring.fingerprint)
        assert not r.ok, f"byte {pos} changed but the bundle still verified"
    # truncated / extended
    assert not (await averify_bundle(data[:-1], world.notary.keyring.fingerprint)).ok
    assert not (await averify_bundle(data + b"\0", world.notary.keyring.fingerprint)).ok


async def test_every_member_removed_or_swapped_fails(world: World, no_network: None) -> None:
    bundle = await full_flow(world)
    files = zipfmt.read(bundle.data)
    fp = world.notary.keyring.fingerprint
    names = sorted(files)
    for name in names:
        removed = {k: v for k, v in files.items() if k != name}
        r = await averify_bundle(zipfmt.write(removed), fp)
        assert not r.ok and r.failed_item, name
        assert name in (r.failed_item or "") or r.failed_item in ("manifest signature", "center key"), (name, r)
    for i, name in enumerate(names):
        other = names[(i + 1) % len(names)]
        if files[name] == files[other]:  # dev: the seal root also issues the TSA cert; swapping equals is no change
            continue
        swapped = dict(files, **{name: files[other], other: files[name]})
        r = await averify_bundle(zipfmt.write(swapped), fp)
        assert not r.ok, (name, other)
    extra = dict(files, **{"agreement/extra.txt": b"x"})
    r = await averify_bundle(zipfmt.write(extra), fp)
    assert r.failed_item == "file agreement/extra.txt"


def _resign(w: World, files: dict[str, bytes], changed: list[str], **agreement: str) -> bytes:
    m = json.loads(files["manifest.json"])
    for name in changed:
        m["files"][name] = {"sha256": sha256_hex(files[name]), "size": len(files[name])}
    m["agreement"].update(agreement)
    files["manifest.json"] = canonical_json(m)
    files["manifest.sig"] = w.notary.keyring.signing_key.sign(files["manifest.json"])
    return zipfmt.write(files)


async def test_center_cannot_forge_or_edit_what_parties_signed(world: World, no_network: None) -> None:
    """Even with the center's own key re-signing the manifest, a changed party signature or an agreement edited
    after signing fails on the party's key."""
    bundle = await full_flow(world)
    fp = world.notary.keyring.fingerprint
    files = zipfmt.read(bundle.data)
    sigs = json.loads(files["agreement/signatures.json"])
    party = next(x for x in sigs if x["role"] == "party")
    raw = bytearray(base64.b64decode(party["signature"]))
    raw[5] ^= 1
    party["signature"] = base64.b64encode(bytes(raw)).decode()
    files["agreement/signatures.json"] = json.dumps(sigs).encode()
    r = await averify_bundle(_resign(world, files, ["agreement/signatures.json"]), fp)
    assert not r.ok and r.failed_item == f"signature {party['signer']} ({party['name']}, party)"

    files = zipfmt.read(bundle.data)
    content = json.loads(files["agreement/content.json"])
    content["terms"][0]["amount"] = "1.00"
    files["agreement/content.json"] = canonical_json(content)
    data = _resign(world, files, ["agreement/content.json"],
                   content_sha256=sha256_hex(files["agreement/content.json"]))
    r = await averify_bundle(data, fp)
    assert not r.ok and (r.failed_item or "").startswith("signature person:"), r


async def test_audit_extract_redacts_other_cases_and_keeps_the_chain(world: World, no_network: None) -> None:
    bundle = await full_flow(world)
    files = zipfmt.read(bundle.data)
    extract = json.loads(files["audit/extract.json"])
    assert extract["subjects"] == [f"case:{world.case_code}", "recording:rec-1"]
    assert "另一案件的隐私".encode() not in bundle.data
    redacted = [e for e in extract["entries"] if e.get("redacted")]
    assert len(redacted) == 1 and set(redacted[0]) == {"seq", "redacted", "content_hash", "prev_hash", "hash"}
    actions = [e["action"] for e in extract["entries"] if not e.get("redacted")]
    assert {"agreement.sign", "agreement.effective", "agreement.seal", "application.submit", "court.rule",
            "recording.segment", "recording.stop", "bundle.fetch"} <= set(actions)
    # editing a shown entry, or dropping a redacted one, breaks the chain even under a re-signed manifest
    shown = next(e for e in extract["entries"] if e.get("action") == "court.rule")
    shown["detail"]["outcome"] = "rejected"
    files["audit/extract.json"] = json.dumps(extract).encode()
    r = await averify_bundle(_resign(world, files, ["audit/extract.json"]), world.notary.keyring.fingerprint)
    assert not r.ok and r.failed_item == f"audit entry {shown['seq']}" and r.error == "content edited"
    files = zipfmt.read(bundle.data)
    extract = json.loads(files["audit/extract.json"])
    extract["entries"] = [e for e in extract["entries"] if not e.get("redacted")]
    files["audit/extract.json"] = json.dumps(extract).encode()
    r = await averify_bundle(_resign(world, files, ["audit/extract.json"]), world.notary.keyring.fingerprint)
    assert not r.ok and (r.failed_item or "").startswith("audit entry")
