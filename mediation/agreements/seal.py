"""The center's PAdES seal over the signed agreement PDF (R15, R19), with pyHanko.

The sealed PDF = the signed rendering (signature block with names, times, key fingerprints) + embedded files
`signatures.json` (every participant's signature) and `agreement-unsigned.pdf` (the exact bytes they signed),
then one PAdES signature by the center's seal certificate over the whole file, with an RFC 3161 signature
timestamp (B-T) and the chain + validation data in the document security store (B-LT).
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging

from pyhanko.pdf_utils.embed import EmbeddedFileObject, FileSpec, embed_file
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko_certvalidator.registry import SimpleCertificateStore
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.agreements import payloads
from mediation.agreements._load import agreement_row, case_row, version_row
from mediation.agreements.agreement import (
    AgreementView,
    beijing_time,
    get_agreement,
    pdf_input,
    signature_rows,
    subject,
)
from mediation.agreements.integrity import verify_signatures
from mediation.agreements.notary import Notary
from mediation.agreements.pdf import render
from mediation.agreements.seal_check import SEAL_FIELD, validate_seal, validation_context  # noqa: F401 (tests)
from mediation.db import utcnow
from mediation.errors import Conflict, IntegrityError

log = logging.getLogger(__name__)


async def seal_pdf(pdf: bytes, notary: Notary, attachments: dict[str, bytes], *, reason: str = "") -> bytes:
    w = IncrementalPdfFileWriter(io.BytesIO(pdf))
    for name, data in attachments.items():
        mime = "application/pdf" if name.endswith(".pdf") else "application/json"
        ef = EmbeddedFileObject.from_file_data(w, data, mime_type=mime)
        embed_file(w, FileSpec(file_spec_string=name, file_name=name, embedded_data=ef, description=name))
    pki = notary.pki
    signer = signers.SimpleSigner(
        signing_cert=pki.seal.asn1_cert(), signing_key=pki.seal.asn1_key(),
        cert_registry=SimpleCertificateStore.from_certs([pki.root.asn1_cert()]),
    )
    meta = signers.PdfSignatureMetadata(
        field_name=SEAL_FIELD, md_algorithm="sha256", subfilter=fields.SigSeedSubFilter.PADES,
        reason=reason or "调解组织电子印章 / seal of the mediation organization", name=notary.settings.center_name,
        embed_validation_info=True, validation_context=validation_context([pki.root.cert_der, *notary.tsa.roots]),
    )
    pdf_signer = signers.PdfSigner(meta, signer=signer, timestamper=notary.tsa.stamper)
    # off the event loop: building and timestamping the PAdES signature is ~100 ms of CPU in asn1crypto (sign_pdf
    # runs pyhanko's own coroutine in this worker thread's loop; the timestampers used here hold no loop state)
    out = await asyncio.to_thread(pdf_signer.sign_pdf, w)
    return bytes(out.getvalue())


async def seal_agreement(s: AsyncSession, agreement_id: int, *, notary: Notary) -> AgreementView:
    """Render the signed agreement, attach the signatures and seal it. Needs all parties + the mediator signed."""
    a = await agreement_row(s, agreement_id, lock=True)
    case = await case_row(s, a.case_id)
    if a.status != "effective":
        raise Conflict("协议尚未生效，不能盖章 / the agreement is not effective yet", code="not_effective")
    sigs = await signature_rows(s, a.id)
    if not any(r.role == "mediator" for r in sigs):
        raise Conflict("调解员尚未签署 / the mediator has not signed", code="mediator_unsigned")
    problems = await verify_signatures(s, a.id)
    if problems:
        raise IntegrityError("签名核验失败 / signatures do not verify: " + "; ".join(problems), code="signature_invalid")
    assert a.final_version is not None and a.unsigned_pdf is not None and a.content_sha256
    v = await version_row(s, a.id, a.final_version)
    doc = await pdf_input(s, a, case, notary, json.loads(v.content), a.content_sha256, sigs)
    doc = dataclasses.replace(
        doc, unsigned_pdf_sha256=a.pdf_sha256,
        effective_at=beijing_time(a.effective_at) if a.effective_at else None,
        tsa_time=beijing_time(a.effect_tsa_time) if a.effect_tsa_time else None,
    )
    signed = await asyncio.to_thread(render, doc, notary.settings.font())
    attachments = {
        "signatures.json": payloads.signatures_json(signature_documents(sigs)),
        "agreement-content.json": v.content.encode(),
        "agreement-unsigned.pdf": a.unsigned_pdf,
    }
    a.sealed_pdf = await seal_pdf(signed, notary, attachments)
    a.sealed_at, a.status = utcnow(), "sealed"
    await s.flush()
    await audit.append(s, actor="system", action="agreement.seal", subject=subject(case.code, a.id),
                       detail={"sealed_pdf_sha256": payloads.sha256_hex(a.sealed_pdf)})
    return await get_agreement(s, a.id)


def signature_documents(rows: list) -> list[dict]:  # type: ignore[type-arg]
    return [
        {"signer": r.signer, "role": r.role, "name": r.name, "side": r.side, "version": r.version,
         "algorithm": r.algorithm, "public_key": r.public_key, "key_fingerprint": r.key_fingerprint,
         "signature": r.signature, "signed_at": r.signed_at.isoformat(timespec="microseconds")}
        for r in rows
    ]
