"""Offline verification of an evidence bundle (`onedoor verify`). No network: everything it trusts is either
pinned by the caller (the center key or its fingerprint, printed on every agreement) or covered by the manifest
that the pinned key signed (TSA and seal roots, party keys, the court key).

Imports no database, web or media library (tests/cli/test_verify_standalone.py); docs/bundle.md lists the
modules of the offline verifier.

Checks run in order and stop at the FIRST failing item, which the report names. `verify_recording`, if given, is
called per recording with its files (relative names -> bytes) and parsed manifest and returns readable lines; it
signals failure by raising.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from mediation.agreements import payloads, zipfmt
from mediation.agreements.bundle_format import FORMAT, MANIFEST, MANIFEST_SIG, subject_matches
from mediation.agreements.seal_check import validate_seal
from mediation.agreements.tsa import check_token
from mediation.audit_chain import chain_hash, entry_content
from mediation.canonical import canonical_json, sha256_hex
from mediation.keyring import public_key_fingerprint
from mediation.transcript_format import check_response

RecordingVerifier = Callable[[dict[str, bytes], dict[str, Any]], list[str]]
# (the manifest's document entry, its stored bytes, its wrapped data key) -> a line; raises when it fails
DocumentVerifier = Callable[[dict[str, Any], bytes, bytes], str]


class Failed(Exception):
    def __init__(self, item: str, message: str) -> None:
        super().__init__(f"{item}: {message}")
        self.item, self.message = item, message


@dataclass
class Report:
    ok: bool
    lines: list[str] = field(default_factory=list)
    failed_item: str | None = None
    error: str | None = None

    def text(self) -> str:
        tail = ["VALID"] if self.ok else [f"INVALID — {self.failed_item}: {self.error}"]
        return "\n".join(self.lines + tail)


def _need(cond: bool, item: str, message: str) -> None:
    if not cond:
        raise Failed(item, message)


def _json(files: dict[str, bytes], name: str) -> Any:
    try:
        return json.loads(files[name])
    except (KeyError, ValueError) as e:
        raise Failed(f"file {name}", "missing or not JSON") from e


def _pem_der(data: bytes, item: str) -> bytes:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    except ValueError as e:
        raise Failed(item, "not a PEM certificate") from e


def _center(files: dict[str, bytes], pinned: str | Ed25519PublicKey | bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(files["center/public-key.pem"])
    except (KeyError, ValueError) as e:
        raise Failed("center key", "center/public-key.pem missing or unreadable") from e
    _need(isinstance(key, Ed25519PublicKey), "center key", "not an Ed25519 key")
    assert isinstance(key, Ed25519PublicKey)
    raw = serialization.Encoding.Raw, serialization.PublicFormat.Raw
    if isinstance(pinned, str):
        _need(public_key_fingerprint(key) == pinned.strip().lower(), "center key",
              f"fingerprint {public_key_fingerprint(key)} is not the pinned {pinned}")
    else:
        pin = pinned if isinstance(pinned, Ed25519PublicKey) else serialization.load_pem_public_key(pinned)
        _need(isinstance(pin, Ed25519PublicKey) and pin.public_bytes(*raw) == key.public_bytes(*raw),
              "center key", "the bundle's center key is not the pinned key")
    return key


def _audit(extract: dict[str, Any], manifest_audit: dict[str, Any]) -> int:
    entries = extract.get("entries") or []
    subjects = manifest_audit["subjects"]
    _need(bool(entries), "audit chain", "the extract is empty")
    prev = entries[0]["prev_hash"]
    for i, e in enumerate(entries):
        item = f"audit entry {e.get('seq')}"
        _need(e["seq"] == entries[0]["seq"] + i, item, "entries are not consecutive")
        _need(e["prev_hash"] == prev, item, "prev_hash does not match the previous entry")
        if not e.get("redacted"):
            _need(subject_matches(e["subject"], subjects), item, "entry of another case shown unredacted")
            content = entry_content(e["seq"], _dt(e["at"]), e["actor"], e["action"], e["subject"], e["detail"],
                                    e["reason"])
            _need(sha256_hex(canonical_json(content)) == e["content_hash"], item, "content edited")
        _need(chain_hash(e["prev_hash"], e["content_hash"]) == e["hash"], item, "hash does not match")
        prev = e["hash"]
    _need(manifest_audit.get("last_hash") == prev, "audit chain", "extract does not end at the signed head")
    return len(entries)


def _dt(s: str) -> Any:
    import datetime as dt

    return dt.datetime.fromisoformat(s)


async def _check(
    data: bytes, pinned: str | Ed25519PublicKey | bytes, verify_recording: RecordingVerifier | None,
    court_key: Ed25519PublicKey | None, lines: list[str], verify_document: DocumentVerifier | None = None,
) -> None:
    try:
        files = await asyncio.to_thread(zipfmt.read, data)  # parses and re-serializes: CPU off the loop
    except zipfmt.ZipFormatError as e:
        raise Failed("zip", str(e)) from e
    lines.append(f"zip: {len(files)} members, canonical layout")
    center = _center(files, pinned)
    lines.append(f"center key: {public_key_fingerprint(center)} (pinned)")
    try:
        center.verify(files[MANIFEST_SIG], files[MANIFEST])
    except Exception as e:  # InvalidSignature, missing member
        raise Failed("manifest signature", "does not verify with the center key") from e
    m = json.loads(files[MANIFEST])
    _need(m.get("format") == FORMAT, "manifest", f"unknown format {m.get('format')}")
    lines.append(f"manifest: signed by the center; case {m['case']}, made {m['created_at']} for {m['created_for']}")
    listed = set(m["files"])
    for name in sorted(listed - set(files)):
        raise Failed(f"file {name}", "listed in the manifest but missing")
    for name in sorted(set(files) - listed - {MANIFEST, MANIFEST_SIG}):
        raise Failed(f"file {name}", "not listed in the manifest")
    for name, meta in sorted(m["files"].items()):
        _need(sha256_hex(files[name]) == meta["sha256"] and len(files[name]) == meta["size"], f"file {name}",
              "SHA-256 does not match the manifest")
    lines.append(f"files: {len(listed)} hashes match the manifest")
    ag, content_bytes = m["agreement"], files["agreement/content.json"]
    content = json.loads(content_bytes)
    _need(sha256_hex(content_bytes) == ag["content_sha256"], "agreement content", "hash differs from the manifest")
    _need(sha256_hex(files["agreement/unsigned.pdf"]) == ag["pdf_sha256"], "agreement PDF", "hash differs")
    keys = {(x["context"], x["signer"]): x for x in m["signers"]}
    order = {"party": 0, "agent": 1, "mediator": 2}
    sigs = sorted(_json(files, "agreement/signatures.json"), key=lambda x: (order.get(x["role"], 3), x["signer"]))
    for x in sigs:
        item = f"signature {x['signer']} ({x['name']}, {x['role']})"
        listed_key = keys.get(("agreement", x["signer"]))
        _need(listed_key is not None and listed_key["public_key"] == x["public_key"], item, "key not in the manifest")
        msg = payloads.payload_bytes(case_code=m["case"], agreement_id=m["agreement_id"], version=x["version"],
                                     content_sha256=ag["content_sha256"], pdf_sha256=ag["pdf_sha256"],
                                     signer=x["signer"], role=x["role"])
        _need(x["version"] == ag["version"] and payloads.verify_signature(
            x["algorithm"], base64.b64decode(x["public_key"]), base64.b64decode(x["signature"]), msg),
            item, "does not verify over the final agreement and its PDF")
        lines.append(f"{item}: valid, key {x['key_fingerprint'][:16]}…, signed {x['signed_at']}")
    signed = {x["signer"] for x in sigs}
    agents = {p["person_id"]: p.get("represents") for p in content["parties"] if p["kind"] == "agent"}
    covered = {int(s.split(":")[1]) for s in signed if s.startswith("person:")}
    covered |= {agents[c] for c in list(covered) if c in agents}
    for p in content["parties"]:
        _need(p["kind"] != "party" or p["person_id"] in covered, "party signatures", f"{p['name']} has not signed")
    _need(any(x["role"] == "mediator" for x in sigs), "mediator signature", "missing")
    record = files["agreement/effective.json"]
    rec = json.loads(record)
    expected = payloads.effect_record(
        case_code=m["case"], agreement_id=m["agreement_id"], version=ag["version"],
        content_sha256=ag["content_sha256"], pdf_sha256=ag["pdf_sha256"], effective_at=rec["effective_at"],
        signatures=[x for x in sigs if x["role"] in ("party", "agent")])
    _need(record == expected, "timestamp", "the timestamped record does not match the signatures")
    tsa_roots = [_pem_der(files[n], f"file {n}") for n in m["trust"]["tsa_roots"]]
    try:
        when = await check_token(files["agreement/effective.tsr"], record, tsa_roots)
    except Exception as e:
        raise Failed("timestamp", str(e)) from e
    lines.append(f"timestamp: agreement effective {rec['effective_at']}, RFC 3161 time {when.isoformat()}")
    seal_roots = [_pem_der(files[n], f"file {n}") for n in m["trust"]["seal_roots"]]
    st = await validate_seal(files["agreement/sealed.pdf"], seal_roots, tsa_roots)
    _need(st.ok and sha256_hex(files["agreement/sealed.pdf"]) == ag["sealed_pdf_sha256"], "PDF seal", st.summary)
    lines.append(f"PDF seal: PAdES {st.pades_level}, intact and trusted, timestamp {st.timestamp}")
    await _confirmation(files, m, keys, court_key, lines)
    extract = _json(files, m["audit"]["file"])
    n = _audit(extract, m["audit"])
    lines.append(f"audit chain: {n} consecutive entries ({m['audit']['first_seq']}-{m['audit']['last_seq']}) link")
    _transcripts(files, m, keys, lines)
    await _documents(files, m, extract, lines, verify_document)
    for rec_meta in m["recordings"]:
        item = f"recording {rec_meta['dir']}"
        prefix = rec_meta["dir"] + "/files/"
        if verify_recording is None:
            lines.append(f"{item}: files match the signed manifest; content not checked (no recording verifier)")
            continue
        rec_files = {k[len(prefix):]: v for k, v in files.items() if k.startswith(prefix)}
        try:
            out = verify_recording(rec_files, json.loads(files[rec_meta["manifest"]]))
        except Exception as e:
            raise Failed(item, str(e)) from e
        lines += [f"{item}: {line}" for line in out]


async def _confirmation(files: dict[str, bytes], m: dict[str, Any], keys: dict[Any, Any],
                        court_key: Ed25519PublicKey | None, lines: list[str]) -> None:
    app_bytes = files["confirmation/application.json"]
    app = json.loads(app_bytes)
    _need(app["agreement_id"] == m["agreement_id"] and app["content_sha256"] == m["agreement"]["content_sha256"],
          "application", "is not for this agreement")
    for x in _json(files, "confirmation/application-signatures.json"):
        item = f"application signature {x['signer']} ({x['name']})"
        listed = keys.get(("application", x["signer"]))
        msg = payloads.application_payload_bytes(case_code=m["case"], application_id=m["application_id"],
                                                 document_sha256=sha256_hex(app_bytes), signer=x["signer"])
        _need(listed is not None and listed["public_key"] == x["public_key"] and payloads.verify_signature(
            x["algorithm"], base64.b64decode(x["public_key"]), base64.b64decode(x["signature"]), msg),
            item, "does not verify")
        lines.append(f"{item}: valid")
    if m["ruling"] is None:
        lines.append("ruling: none yet")
        return
    court = _json(files, "court/court.json")
    key = court_key or Ed25519PublicKey.from_public_bytes(base64.b64decode(court["ruling_public_key"]))
    doc_bytes = files[m["ruling"]["document"]]
    try:
        key.verify(files[m["ruling"]["signature"]], doc_bytes)
    except Exception as e:
        raise Failed("ruling", "signature does not verify with the court's key") from e
    doc = json.loads(doc_bytes)
    _need(doc["application_sha256"] == sha256_hex(app_bytes) and doc["content_sha256"] == m["agreement"][
        "content_sha256"] and doc["sealed_pdf_sha256"] == m["agreement"]["sealed_pdf_sha256"], "ruling",
        "is about a different application or agreement")
    lines.append(f"ruling: {doc['outcome_label']} by {doc['court']['name']} ({doc['ruled_at']}), signature valid")


def _transcripts(files: dict[str, bytes], m: dict[str, Any], keys: dict[Any, Any], lines: list[str]) -> None:
    """电子笔录 (R11): each closed transcript's hash, and each party's confirmation or disputes signed with the
    device key the manifest lists for it."""
    for t in m.get("transcripts", []):
        doc = files[t["document"]]
        item = f"transcript of session {t['session']}"
        _need(sha256_hex(doc) == t["sha256"], item, "hash differs from the manifest")
        entries = json.loads(doc)["entries"]
        lines.append(f"{item}: {len(entries)} entries, SHA-256 {t['sha256'][:16]}…")
        for r in _json(files, t["responses"]):
            ritem = f"{item}: response of {r['signer']} ({r['name']})"
            listed = keys.get((f"transcript:{t['session']}", r["signer"]))
            _need(listed is not None and listed["public_key"] == r["public_key"], ritem, "key not in the manifest")
            problem = check_response(doc, r)
            _need(problem is None, ritem, problem or "")
            _need(payloads.verify_signature(r["algorithm"], base64.b64decode(r["public_key"]),
                                            base64.b64decode(r["signature"]), r["payload"].encode()),
                  ritem, "signature does not verify with the device key")
            p = json.loads(r["payload"])
            what = "confirmed" if p["verdict"] == "confirmed" else \
                "disputes passages " + ", ".join(str(d["seq"]) for d in p["disputes"])
            lines.append(f"{ritem}: {what}; recording may replace the transcript: "
                         f"{'yes' if p['recording_may_replace'] else 'no'}; signature valid")


async def _documents(files: dict[str, bytes], m: dict[str, Any], extract: dict[str, Any], lines: list[str],
                     verify_document: DocumentVerifier | None) -> None:
    """Case-file documents travel encrypted (the court's key opens them); without the key, the stored bytes are
    checked against the hash the audit log recorded at upload. With a document verifier (the CLI's, given the
    court's key) each one is also decrypted and its plaintext hash checked. The application's documents (R23)
    must be case-file documents the bundle carries, with the same hash."""
    uploads = {}
    for e in extract.get("entries", []):
        if not e.get("redacted") and e["action"] == "document.upload":
            detail = e["detail"] if isinstance(e["detail"], dict) else json.loads(e["detail"])
            uploads[e["subject"].rsplit("document:", 1)[-1]] = detail
    carried = {}
    for d in m.get("documents", []):
        item = f"document {d['id']} ({d['filename']})"
        up = uploads.get(d["id"])
        _need(up is not None, item, "its upload is not in the audit extract")
        assert up is not None
        _need(sha256_hex(files[d["content"]]) == up["stored_sha256"] and up["sha256"] == d["sha256"], item,
              "stored bytes differ from what the audit log recorded at upload")
        lines.append(f"{item}: {d['media_type']}, {d['size']} bytes, encrypted, matches the upload's audit entry")
        carried[d["id"]] = d
        if verify_document is not None:
            try:
                line = await asyncio.to_thread(verify_document, d, files[d["content"]], files[d["wrapped_key"]])
            except Exception as e:
                raise Failed(item, str(e)) from e
            lines.append(f"{item}: {line}")
    refs = _json(files, "confirmation/documents.json") if "confirmation/documents.json" in files else []
    for r in refs:
        item = f"application document {r['kind']} {r['document_id']}"
        d = carried.get(r["document_id"])
        _need(d is not None and d["sha256"] == r["sha256"], item,
              "is not a case-file document of this bundle (or its hash differs)")
        lines.append(f"{item}: the case file's document, hash matches")


async def averify_bundle(
    bundle: bytes | Path | str, pinned: str | Ed25519PublicKey | bytes, *,
    verify_recording: RecordingVerifier | None = None, court_key: Ed25519PublicKey | None = None,
    verify_document: DocumentVerifier | None = None,
) -> Report:
    """Verify a bundle (bytes or a path) against the pinned center key (fingerprint string, key or PEM bytes)."""
    data = bundle if isinstance(bundle, bytes) else await asyncio.to_thread(Path(bundle).read_bytes)
    lines: list[str] = []
    try:
        await _check(data, pinned, verify_recording, court_key, lines, verify_document)
    except Failed as f:
        return Report(False, lines, f.item, f.message)
    except (KeyError, ValueError, TypeError, IndexError) as e:  # a well-signed but malformed bundle
        return Report(False, lines, "bundle structure", f"{type(e).__name__}: {e}")
    return Report(True, lines)


def verify_bundle(
    bundle: bytes | Path | str, pinned: str | Ed25519PublicKey | bytes, *,
    verify_recording: RecordingVerifier | None = None, court_key: Ed25519PublicKey | None = None,
) -> Report:
    """Synchronous entry point for the CLI (runs its own event loop; from async code use `averify_bundle`)."""
    return asyncio.run(averify_bundle(bundle, pinned, verify_recording=verify_recording, court_key=court_key))
