"""The evidence bundle a court retrieves (issue 5 §5): a canonical zip (`zipfmt`) with a manifest signed by the
center's Ed25519 key. The format is documented in docs/bundle.md; `verify.py` checks it offline.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import serialization
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation import transcript as e_transcript
from mediation.agreements import zipfmt
from mediation.agreements._load import agreement_row, case_row, version_row
from mediation.agreements.agreement import signature_rows
from mediation.agreements.bundle_format import FORMAT, MANIFEST, MANIFEST_SIG, subject_matches
from mediation.agreements.confirmation import app_subject, application_row
from mediation.agreements.courts import CourtDirectory
from mediation.agreements.judging import judge_account, ruling_for
from mediation.agreements.notary import Notary
from mediation.agreements.package import application_package
from mediation.agreements.seal import signature_documents
from mediation.audit import AuditEntry
from mediation.canonical import canonical_json, sha256_hex
from mediation.db import utcnow
from mediation.errors import Conflict

log = logging.getLogger(__name__)


@dataclass
class RecordingPart:
    """One recording as produced by recordings/: its (signed) manifest bytes, the encrypted segment files and
    the data key wrapped to the court's X25519 key. Carried as opaque bytes; checked by `verify_recording`."""

    manifest: bytes
    files: dict[str, bytes] = field(default_factory=dict)  # relative name -> encrypted bytes
    wrapped_key: bytes = b""
    recording_id: str = ""


@dataclass
class DocumentPart:
    """One case-file document as the bundle carries it (issue 13): its stored, encrypted stream (the recording
    segment format) and its data key wrapped to the court; `meta` is mediation.documents.public()."""

    meta: dict[str, Any]
    stored: bytes
    wrapped_key: bytes


@dataclass
class Bundle:
    filename: str
    data: bytes
    manifest: dict[str, Any]


def _pem(der: bytes) -> bytes:
    from cryptography import x509

    return x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM)


async def audit_extract(s: AsyncSession, prefixes: list[str]) -> dict[str, Any]:
    """The consecutive range of the audit chain that spans every entry whose subject is one of `prefixes` (or
    below it: "case:X" covers "case:X/agreement:1"); other entries inside the range are redacted to their
    hashes, which is enough to recompute the chain (mediation.audit) and says nothing about other cases."""
    own = [e for p in prefixes for e in await audit.entries_for(s, p) if subject_matches(e.subject, prefixes)]
    if not own:
        return {"subjects": prefixes, "entries": []}
    first, last = min(e.seq for e in own), max(e.seq for e in own)
    rows = (await s.scalars(select(AuditEntry).where(AuditEntry.seq >= first, AuditEntry.seq <= last)
                            .order_by(AuditEntry.seq))).all()
    entries = [e.to_dict() if subject_matches(e.subject, prefixes) else
               {"seq": e.seq, "redacted": True, "content_hash": e.content_hash, "prev_hash": e.prev_hash,
                "hash": e.hash} for e in rows]
    return {"subjects": prefixes, "first_seq": first, "last_seq": last, "entries": entries}


def _js(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True).encode()


async def build_bundle(
    s: AsyncSession, application_id: int, *, judge_id: int, notary: Notary, courts: CourtDirectory,
    recordings: list[RecordingPart] | None = None, reason: str = "", documents: list[DocumentPart] | None = None,
) -> Bundle:
    """Assemble the bundle for the court the application was sent to. Only a judge of that court may fetch it;
    the fetch is audited (and that entry is inside the bundle's own audit extract)."""
    app = await application_row(s, application_id)
    await judge_account(s, judge_id, app.court_id)
    a = await agreement_row(s, app.agreement_id)
    case = await case_row(s, app.case_id)
    if a.sealed_pdf is None or a.unsigned_pdf is None or a.effect_token is None or a.effect_record is None:
        raise Conflict("协议尚未盖章 / the agreement is not sealed yet", code="not_sealed")
    assert a.final_version is not None
    await audit.append(s, actor=f"staff:{judge_id}", action="bundle.fetch", subject=app_subject(case.code, app.id),
                       detail={"court_id": app.court_id}, reason=reason or None)
    court = courts.get(app.court_id)
    version = await version_row(s, a.id, a.final_version)
    sigs = signature_documents(await signature_rows(s, a.id))
    files: dict[str, bytes] = {
        "center/public-key.pem": notary.keyring.public_pem(),
        "trust/seal-root.pem": _pem(notary.pki.root.cert_der),
        "agreement/content.json": version.content.encode(),
        "agreement/unsigned.pdf": a.unsigned_pdf,
        "agreement/sealed.pdf": a.sealed_pdf,
        "agreement/signatures.json": _js(sigs),
        "agreement/effective.json": a.effect_record.encode(),
        "agreement/effective.tsr": a.effect_token,
        "court/court.json": _js(court.to_dict()),
    }
    tsa_roots = []
    for i, der in enumerate(notary.tsa.roots, 1):
        files[f"trust/tsa-root-{i}.pem"] = _pem(der)
        tsa_roots.append(f"trust/tsa-root-{i}.pem")
    pkg = await application_package(s, app.id)
    for name, data in pkg.files.items():
        if name != "agreement-sealed.pdf":
            files[f"confirmation/{name}"] = data
    ruling = await ruling_for(s, app.id)
    if ruling is not None:
        files["confirmation/ruling.json"] = canonical_json(ruling.document)
        files["confirmation/ruling.sig"] = base64.b64decode(ruling.signature)
    rec_entries = []
    for i, rec in enumerate(recordings or [], 1):
        d = f"recording/{i}"
        files[f"{d}/manifest.json"] = rec.manifest
        files[f"{d}/data-key.wrapped"] = rec.wrapped_key
        for name, data in rec.files.items():
            files[f"{d}/files/{name}"] = data
        rec_entries.append({"dir": d, "recording_id": rec.recording_id, "manifest": f"{d}/manifest.json",
                            "wrapped_key": f"{d}/data-key.wrapped", "wrapped_to": court.recording_public_key,
                            "files": sorted(f"{d}/files/{n}" for n in rec.files)})
    doc_entries = []
    for dp in documents or []:
        base = f"documents/{dp.meta['id']}"
        files[f"{base}/content.odr"], files[f"{base}/data-key.wrapped"] = dp.stored, dp.wrapped_key
        doc_entries.append({**{k: dp.meta[k] for k in ("id", "purpose", "filename", "media_type", "size", "sha256",
                                                      "person_id", "uploaded_at")},
                            "content": f"{base}/content.odr", "wrapped_key": f"{base}/data-key.wrapped",
                            "wrapped_to": court.recording_public_key})
    tx_entries, tx_signers = [], []
    for t, responses in await e_transcript.closed_transcripts(s, case.id):
        base = f"transcript/{t.session_id}"
        records = [e_transcript.response_record(r) for r in responses]
        files[f"{base}/transcript.json"] = t.document.encode()
        files[f"{base}/responses.json"] = _js(records)
        tx_entries.append({"session": t.session_id, "document": f"{base}/transcript.json", "sha256": t.sha256,
                           "responses": f"{base}/responses.json"})
        tx_signers += [{"context": f"transcript:{t.session_id}", **{k: x[k] for k in (
            "signer", "role", "name", "algorithm", "public_key", "key_fingerprint")}} for x in records]
    subjects = [f"case:{case.code}"] + [f"recording:{r.recording_id}" for r in recordings or [] if r.recording_id]
    extract = await audit_extract(s, subjects)
    files["audit/extract.json"] = _js(extract)
    app_sigs = json.loads(pkg.files["application-signatures.json"])
    signers = (
        [{"context": "agreement", **{k: x[k] for k in ("signer", "role", "name", "algorithm", "public_key",
                                                      "key_fingerprint")}} for x in sigs]
        + [{"context": "application", **{k: x[k] for k in ("signer", "role", "name", "algorithm", "public_key",
                                                          "key_fingerprint")}} for x in app_sigs]
        + [{"context": "ruling", "signer": f"court:{court.id}", "role": "court", "name": court.name,
            "algorithm": "ed25519-raw", "public_key": court.ruling_public_key,
            "key_fingerprint": court.ruling_key_fingerprint}]
        + tx_signers
    )
    entries = extract["entries"]
    raw_pub = notary.keyring.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    manifest = {
        "format": FORMAT, "case": case.code, "agreement_id": a.id, "application_id": app.id, "court_id": court.id,
        "created_at": utcnow().isoformat(timespec="microseconds"), "created_for": f"staff:{judge_id}",
        "center": {"public_key_ed25519": base64.b64encode(raw_pub).decode(),
                   "fingerprint": notary.keyring.fingerprint, "public_key_file": "center/public-key.pem"},
        "files": {n: {"sha256": sha256_hex(b), "size": len(b)} for n, b in sorted(files.items())},
        "signers": signers,
        "agreement": {"version": a.final_version, "content_sha256": a.content_sha256, "pdf_sha256": a.pdf_sha256,
                      "sealed_pdf_sha256": sha256_hex(a.sealed_pdf), "status": a.status},
        "timestamps": {"effective_at": a.effective_at.isoformat(timespec="microseconds") if a.effective_at else None,
                       "tsa_time": a.effect_tsa_time.isoformat() if a.effect_tsa_time else None,
                       "record": "agreement/effective.json", "token": "agreement/effective.tsr",
                       "sealed_at": a.sealed_at.isoformat() if a.sealed_at else None},
        "trust": {"seal_roots": ["trust/seal-root.pem"], "tsa_roots": tsa_roots},
        "ruling": None if ruling is None else {
            "document": "confirmation/ruling.json", "signature": "confirmation/ruling.sig", "outcome": ruling.outcome,
            "court_key_fingerprint": ruling.court_key_fingerprint},
        "recordings": rec_entries,
        "documents": doc_entries,
        "transcripts": tx_entries,
        "audit": {"file": "audit/extract.json", "subjects": subjects, "first_seq": extract.get("first_seq"),
                  "last_seq": extract.get("last_seq"), "last_hash": entries[-1]["hash"] if entries else None},
    }
    manifest_bytes = canonical_json(manifest)
    files[MANIFEST] = manifest_bytes
    files[MANIFEST_SIG] = notary.keyring.signing_key.sign(manifest_bytes)
    data = zipfmt.write(files)
    log.info("bundle for %s: %d files, %d bytes", case.code, len(files), len(data))
    return Bundle(f"{case.code}-bundle.zip", data, manifest)
