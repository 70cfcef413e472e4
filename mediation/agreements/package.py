"""The application package for the court (R23; CPL-I 353-354; JC 3), assembled from what the system holds:
the application and its signatures, the sealed agreement, proof that a mediation organization presided, the
parties' identity/address/contact details, powers of attorney for applying agents, proofs of property rights.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.agreements._load import agreement_row, case_row, center_of, staff_name
from mediation.agreements.agreement import signature_rows
from mediation.agreements.application_state import (
    applicant_agents,
    application_documents,
    application_row,
    application_signatures,
    missing_items,
    powers_of_attorney,
)
from mediation.agreements.confirmation import app_subject, try_submit
from mediation.agreements.models import ApplicationDocument, ConfirmationApplication
from mediation.agreements.seal import signature_documents
from mediation.canonical import sha256_hex
from mediation.casefile_records import CaseDocument
from mediation.errors import Conflict, Forbidden, InvalidInput, NotFound
from mediation.models import MediationSession

log = logging.getLogger(__name__)
DOCUMENT_KINDS = ("power_of_attorney", "property_proof", "other")
MAX_DOCUMENT = 10 * 1024 * 1024


@dataclass
class ApplicationPackage:
    application_id: int
    files: dict[str, bytes]
    index: list[dict[str, Any]] = field(default_factory=list)  # [{name, sha256, size, item}]
    missing: list[dict[str, Any]] = field(default_factory=list)


def _kind(purpose: str) -> str:
    """The package item a case-file document is: its purpose, or "other" for evidence."""
    return purpose if purpose in DOCUMENT_KINDS else "other"


async def attach_document(s: AsyncSession, application_id: int, *, document_id: str, actor: str
                          ) -> dict[str, Any]:
    """Attach a document of the case file (mediation.documents) to the application: a power of attorney (its
    `person_id` names the agent), a proof of property rights, or another document (a piece of evidence is
    attached as "other"). Attaching the same document again changes nothing. Caucus-only material (R9) and
    documents whose keys were destroyed cannot go to a court."""
    app = await application_row(s, application_id)
    if app.status != "draft":
        raise Conflict("申请已提交 / the application was already submitted", code="already_submitted")
    doc = await s.get(CaseDocument, document_id)
    if doc is None or doc.case_id != app.case_id:
        raise NotFound("no such document", code="document_not_found")
    if doc.privileged:
        raise Forbidden("该材料仅在背靠背中出示过，不能交给法院 / shown only in a caucus (R9)", code="privileged")
    if doc.keys_destroyed_at is not None:
        raise Conflict("该材料已销毁 / the document's keys were destroyed", code="document_destroyed")
    existing = await s.scalar(select(ApplicationDocument).where(ApplicationDocument.application_id == app.id,
                                                               ApplicationDocument.document_id == doc.id))
    if existing is not None:
        return document_json(existing)
    if _kind(doc.purpose) == "power_of_attorney":
        await check_power_of_attorney(s, app, doc.person_id)
    row = ApplicationDocument(application_id=app.id, document_id=doc.id, kind=_kind(doc.purpose),
                              person_id=doc.person_id, filename=doc.filename, sha256=doc.sha256, data=None,
                              added_by=actor)
    s.add(row)
    try:
        await s.flush()
    except IntegrityError:  # the same document attached at the same moment
        raise Conflict("该材料已附上 / already attached", code="retry") from None
    case = await case_row(s, app.case_id)
    await audit.append(s, actor=actor, action="application.document", subject=app_subject(case.code, app.id),
                       detail={"kind": row.kind, "document_id": doc.id, "sha256": doc.sha256,
                               "person_id": doc.person_id})
    await try_submit(s, app.id)
    return document_json(row)


async def check_power_of_attorney(s: AsyncSession, app: ConfirmationApplication, agent: int | None) -> None:
    """One power of attorney per applying agent (R23): for an agent among the applicants, not yet on file."""
    if agent is None or agent not in applicant_agents(json.loads(app.document)):
        raise InvalidInput("授权委托书须写明申请人中的委托代理人 / a power of attorney names an applying agent",
                           code="not_an_agent", field="person_id")
    if agent in await powers_of_attorney(s, app.id):
        raise Conflict("该代理人的授权委托书已附上 / this agent's power of attorney is already attached",
                       code="poa_on_file")


def document_json(d: ApplicationDocument) -> dict[str, Any]:
    return {"id": d.id, "document_id": d.document_id, "kind": d.kind, "filename": d.filename, "sha256": d.sha256,
            "person_id": d.person_id}


async def application_package(s: AsyncSession, application_id: int) -> ApplicationPackage:
    app = await application_row(s, application_id)
    a = await agreement_row(s, app.agreement_id)
    case = await case_row(s, app.case_id)
    center = await center_of(s, case)
    doc, sigs = json.loads(app.document), await application_signatures(s, app.id)
    agreement_sigs = await signature_rows(s, a.id)
    sessions = (await s.scalars(select(MediationSession).where(MediationSession.case_id == case.id)
                                .order_by(MediationSession.id))).all()
    proof = {
        "type": "onedoor-mediation-proof", "case": case.code,
        "organization": {"name": center.name, "address": center.address},
        "mediator": await staff_name(s, case.mediator_id),
        "sessions": [{"id": x.id, "kind": x.kind, "scheduled_at": x.scheduled_at.isoformat(),
                      "live_at": x.live_at.isoformat() if x.live_at else None,
                      "ended_at": x.ended_at.isoformat() if x.ended_at else None} for x in sessions],
        "agreement": {"id": a.id, "version": a.final_version, "effective_at": a.effective_at.isoformat()
                      if a.effective_at else None, "sealed_at": a.sealed_at.isoformat() if a.sealed_at else None,
                      "mediator_signatures": [x for x in signature_documents(agreement_sigs)
                                              if x["role"] == "mediator"]},
    }
    identities = [{k: p[k] for k in ("person_id", "side", "kind", "name", "id_number", "address", "phone",
                                     "represents")} for p in doc["applicants"]]

    def js(value: Any) -> bytes:
        return json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True).encode()

    files: dict[str, bytes] = {
        "application.json": app.document.encode(),
        "application-signatures.json": js([{
            "signer": r.signer, "role": r.role, "name": r.name, "side": r.side, "algorithm": r.algorithm,
            "public_key": r.public_key, "key_fingerprint": r.key_fingerprint, "signature": r.signature,
            "signed_at": r.signed_at.isoformat(timespec="microseconds")} for r in sigs]),
        "mediation-proof.json": js(proof),
        "parties.json": js(identities),
    }
    if a.sealed_pdf is not None:
        files["agreement-sealed.pdf"] = a.sealed_pdf
    attached = await application_documents(s, app.id)
    refs = [d for d in attached if d.document_id is not None]
    if refs:  # the case file's documents: the court gets them encrypted (the bundle's documents/<id>/)
        files["documents.json"] = js([{**document_json(d), "content": f"documents/{d.document_id}/content.odr"}
                                      for d in refs])
    for d in attached:
        if d.document_id is None and d.data is not None:  # legacy rows: bytes inline
            files[f"{d.kind}/{d.id}-{d.filename}"] = d.data
    items = {"application.json": "application", "application-signatures.json": "application",
             "mediation-proof.json": "proof of mediation", "parties.json": "identity, address, contact",
             "agreement-sealed.pdf": "agreement", "documents.json": "documents in the case file"}
    index = [{"name": n, "sha256": sha256_hex(b), "size": len(b), "item": items.get(n, n.split("/")[0])}
             for n, b in files.items()]
    index += [{"name": f"case-file:{d.document_id}", "sha256": d.sha256, "size": None, "item": d.kind}
              for d in refs]
    return ApplicationPackage(app.id, files, index, await missing_items(s, app.id))
