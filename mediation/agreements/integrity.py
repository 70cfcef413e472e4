"""Re-verifying an agreement's stored signatures against its stored final content and PDF (used before sealing,
in the console's and the court's integrity check). Its own module so sealing and signing do not import each
other."""

from __future__ import annotations

import base64
import json

from sqlalchemy.ext.asyncio import AsyncSession

from mediation.agreements import payloads
from mediation.agreements._load import agreement_row, case_row, version_row
from mediation.agreements.agreement import signature_rows, unsigned_parties
from mediation.errors import NotFound


async def verify_signatures(s: AsyncSession, agreement_id: int) -> list[str]:
    """Re-verify every stored signature against the stored final content and PDF. Empty list = all good."""
    a = await agreement_row(s, agreement_id)
    case = await case_row(s, a.case_id)
    if a.final_version is None or a.unsigned_pdf is None:
        raise NotFound("协议尚未定稿 / not final", code="not_final")
    v = await version_row(s, a.id, a.final_version)
    problems = []
    if payloads.sha256_hex(v.content.encode()) != a.content_sha256:
        problems.append("final content changed after finalization")
    if payloads.sha256_hex(a.unsigned_pdf) != a.pdf_sha256:
        problems.append("PDF changed after finalization")
    content_sha, pdf_sha = payloads.sha256_hex(v.content.encode()), payloads.sha256_hex(a.unsigned_pdf)
    for r in await signature_rows(s, a.id):
        msg = payloads.payload_bytes(case_code=case.code, agreement_id=a.id, version=r.version,
                                     content_sha256=content_sha, pdf_sha256=pdf_sha, signer=r.signer, role=r.role)
        if not payloads.verify_signature(r.algorithm, base64.b64decode(r.public_key),
                                         base64.b64decode(r.signature), msg):
            problems.append(f"signature of {r.signer} ({r.name}) does not verify")
    if a.final_version is not None and unsigned_parties(json.loads(v.content), await signature_rows(s, a.id)) and a.status != "final":
        problems.append("a party's signature is missing")
    return problems
