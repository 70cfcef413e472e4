"""Agreement drafts, versions and finalization (R15). Every save is a new version; the final one is frozen.

All service functions take the caller's `AsyncSession` (one transaction) and return plain dataclasses.
Audit subjects are `case:<code>/agreement:<id>`, so a case's extract finds them by the `case:<code>` prefix.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.agreements import content as contents
from mediation.agreements import templates
from mediation.agreements._load import (
    agreement_row,
    case_row,
    center_of,
    parties_snapshot,
    staff_name,
    version_row,
)
from mediation.agreements.models import Agreement, AgreementSignature, AgreementVersion
from mediation.agreements.notary import Notary
from mediation.agreements.pdf import PdfInput, SignatureLine, render
from mediation.canonical import canonical_json, sha256_hex
from mediation.db import utcnow
from mediation.errors import Conflict
from mediation.models import Case

log = logging.getLogger(__name__)
LIVE_STATUSES = ("draft", "final", "effective", "sealed")


@dataclass
class SignatureInfo:
    signer: str  # "person:12" | "staff:3"
    role: str  # party | agent | mediator
    name: str
    side: str
    person_id: int | None
    staff_id: int | None
    algorithm: str
    public_key: str  # base64 SPKI DER
    key_fingerprint: str  # sha256 hex of the SPKI DER
    signature: str  # base64
    signed_at: dt.datetime


@dataclass
class AgreementView:
    id: int
    case_id: int
    case_code: str
    status: str  # draft | final | effective | sealed | refused | void
    template: str
    current_version: int
    final_version: int | None
    content: dict[str, Any]
    content_sha256: str
    pdf_sha256: str | None
    created_at: dt.datetime
    finalized_at: dt.datetime | None
    effective_at: dt.datetime | None
    effect_tsa_time: dt.datetime | None
    sealed_at: dt.datetime | None
    signatures: list[SignatureInfo] = field(default_factory=list)
    unsigned_parties: list[int] = field(default_factory=list)  # party person ids not yet signed for
    mediator_signed: bool = False


@dataclass
class VersionInfo:
    version: int
    content_sha256: str
    author: str
    created_at: dt.datetime
    note: str
    content: dict[str, Any]


def beijing_time(t: dt.datetime) -> str:
    """How times are printed on the agreement: China Standard Time, to the second."""
    return t.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S") + "（北京时间）"


def subject(case_code: str, agreement_id: int) -> str:
    return f"case:{case_code}/agreement:{agreement_id}"


def signature_info(r: AgreementSignature) -> SignatureInfo:
    return SignatureInfo(r.signer, r.role, r.name, r.side, r.person_id, r.staff_id, r.algorithm, r.public_key,
                         r.key_fingerprint, r.signature, r.signed_at)


async def signature_rows(s: AsyncSession, agreement_id: int) -> list[AgreementSignature]:
    q = select(AgreementSignature).where(AgreementSignature.agreement_id == agreement_id)
    return list((await s.scalars(q.order_by(AgreementSignature.id))).all())


def unsigned_parties(content: dict[str, Any], sigs: list[AgreementSignature]) -> list[int]:
    """Parties not yet signed for, by themselves or by an agent representing them."""
    covered = {r.person_id for r in sigs if r.role == "party"}
    agents = {p["person_id"]: p.get("represents") for p in content.get("parties", []) if p["kind"] == "agent"}
    covered |= {agents.get(r.person_id) for r in sigs if r.role == "agent"}
    return [p["person_id"] for p in content.get("parties", []) if p["kind"] == "party"
            and p["person_id"] not in covered]


async def _view(s: AsyncSession, a: Agreement) -> AgreementView:
    case = await case_row(s, a.case_id)
    v = await version_row(s, a.id, a.final_version or a.current_version)
    content = json.loads(v.content)
    sigs = await signature_rows(s, a.id)
    return AgreementView(
        id=a.id, case_id=a.case_id, case_code=case.code, status=a.status, template=a.template,
        current_version=a.current_version, final_version=a.final_version, content=content,
        content_sha256=v.content_sha256, pdf_sha256=a.pdf_sha256, created_at=a.created_at,
        finalized_at=a.finalized_at, effective_at=a.effective_at, effect_tsa_time=a.effect_tsa_time,
        sealed_at=a.sealed_at, signatures=[signature_info(r) for r in sigs],
        unsigned_parties=unsigned_parties(content, sigs) if a.final_version else [],
        mediator_signed=any(r.role == "mediator" for r in sigs),
    )


async def get_agreement(s: AsyncSession, agreement_id: int) -> AgreementView:
    return await _view(s, await agreement_row(s, agreement_id))


async def agreement_for_case(s: AsyncSession, case_id: int) -> AgreementView | None:
    q = select(Agreement).where(Agreement.case_id == case_id, Agreement.status.in_(LIVE_STATUSES))
    a = (await s.scalars(q.order_by(Agreement.id.desc()))).first()
    return await _view(s, a) if a else None


async def _save_version(s: AsyncSession, a: Agreement, content: dict[str, Any], author: str, note: str) -> int:
    text = canonical_json(content).decode()
    last = (await s.scalars(select(AgreementVersion.version).where(AgreementVersion.agreement_id == a.id)
                            .order_by(AgreementVersion.version.desc()))).first()
    version = (last or 0) + 1
    s.add(AgreementVersion(agreement_id=a.id, version=version, content=text, content_sha256=sha256_hex(text.encode()),
                           author=author, note=note))
    a.current_version = version
    await s.flush()
    return version


async def create_draft(
    s: AsyncSession, case_id: int, *, template: str, author: str, mediator_id: int | None = None
) -> AgreementView:
    """Start an agreement for a case from one of `templates.TEMPLATES` (version 1). `mediator_id` (the staff
    member drafting) becomes the case's mediator if it has none yet: that is who signs for the organization."""
    case = await case_row(s, case_id)
    existing = await agreement_for_case(s, case_id)
    if existing is not None:
        raise Conflict("本案已有调解协议 / this case already has an agreement", code="agreement_exists",
                       agreement_id=existing.id)
    content = templates.instantiate(template, await parties_snapshot(s, case_id))
    if case.mediator_id is None and mediator_id is not None:
        case.mediator_id = mediator_id
        await audit.append(s, actor=author, action="case.mediator", subject=f"case:{case.code}",
                           detail={"mediator_id": mediator_id})
    a = Agreement(case_id=case_id, template=template, status="draft", created_by=author, current_version=0)
    s.add(a)
    await s.flush()
    await _save_version(s, a, content, author, "template")
    await audit.append(s, actor=author, action="agreement.draft", subject=subject(case.code, a.id),
                       detail={"template": template})
    return await _view(s, a)


async def update_draft(
    s: AsyncSession, agreement_id: int, content: dict[str, Any], *, author: str, note: str = "",
    base_version: int | None = None,
) -> AgreementView:
    """Save an edited draft as a new version. `base_version` (the version the editor started from) makes a
    concurrent edit fail with Conflict instead of silently overwriting. Parties always come from the case."""
    a = await agreement_row(s, agreement_id, lock=True)
    if a.status != "draft":
        raise Conflict("协议已定稿，不能再修改 / the agreement is final and cannot be edited", code="agreement_frozen")
    if base_version is not None and base_version != a.current_version:
        raise Conflict("协议已被他人修改，请刷新 / the draft changed meanwhile; reload", code="stale_version",
                       current_version=a.current_version)
    case = await case_row(s, a.case_id)
    content = dict(contents.check_shape(content))
    content["parties"] = await parties_snapshot(s, a.case_id)
    content.setdefault("schema", contents.SCHEMA)
    try:
        async with s.begin_nested():  # two saves from the same base: the unique version number decides
            version = await _save_version(s, a, content, author, note)
    except IntegrityError:
        raise Conflict("协议已被他人修改，请刷新 / the draft changed meanwhile; reload", code="stale_version",
                       current_version=a.current_version) from None
    await audit.append(s, actor=author, action="agreement.edit", subject=subject(case.code, a.id),
                       detail={"version": version})
    return await _view(s, a)


async def list_versions(s: AsyncSession, agreement_id: int) -> list[VersionInfo]:
    await agreement_row(s, agreement_id)
    q = select(AgreementVersion).where(AgreementVersion.agreement_id == agreement_id)
    rows = (await s.scalars(q.order_by(AgreementVersion.version))).all()
    return [VersionInfo(r.version, r.content_sha256, r.author, r.created_at, r.note, json.loads(r.content))
            for r in rows]


async def check_draft(s: AsyncSession, agreement_id: int, *, today: dt.date | None = None) -> list[dict[str, str]]:
    """Every problem that would stop finalization, for showing live next to the draft."""
    view = await get_agreement(s, agreement_id)
    return [p.to_dict() for p in contents.problems(view.content, today=today)]


async def pdf_input(
    s: AsyncSession, a: Agreement, case: Case, notary: Notary, content: dict[str, Any], content_sha256: str,
    signatures: list[AgreementSignature] | None = None,
) -> PdfInput:
    center = await center_of(s, case)
    signed = {r.signer: r for r in signatures or []}
    by_agent = {p.get("represents"): p["name"] for p in content.get("parties", [])
                if p["kind"] == "agent" and f"person:{p['person_id']}" in signed}
    lines = []
    for p in content.get("parties", []):
        r = signed.get(f"person:{p['person_id']}")
        if r is None and p["person_id"] in by_agent:
            lines.append(SignatureLine(p["kind"], p["name"], p["side"], f"由委托代理人{by_agent[p['person_id']]}代为签署",
                                       "—"))
            continue
        lines.append(SignatureLine(p["kind"], p["name"], p["side"], beijing_time(r.signed_at) if r else None,
                                   r.key_fingerprint if r else None, r.algorithm if r else None))
    med = next((r for r in signatures or [] if r.role == "mediator"), None)
    med_name = med.name if med else await staff_name(s, case.mediator_id)
    lines.append(SignatureLine("mediator", med_name or "调解员", "", beijing_time(med.signed_at) if med else None,
                               med.key_fingerprint if med else None))
    return PdfInput(
        case_code=case.code, center_name=center.name, center_fingerprint=notary.keyring.fingerprint,
        verify_url=notary.settings.verification_url(case.code), agreement_id=a.id,
        version=a.final_version or a.current_version, content=content, content_sha256=content_sha256, signers=lines,
    )


async def finalize(
    s: AsyncSession, agreement_id: int, *, author: str, notary: Notary, today: dt.date | None = None
) -> AgreementView:
    """Validate (R15: refuses missing fields and vague terms, naming the field), freeze the latest version and
    render the PDF the signers will sign."""
    a = await agreement_row(s, agreement_id, lock=True)
    if a.status != "draft":
        raise Conflict("协议已定稿 / the agreement is already final", code="agreement_frozen")
    case = await case_row(s, a.case_id)
    latest = await version_row(s, a.id, a.current_version)
    content = json.loads(latest.content)
    fresh = await parties_snapshot(s, a.case_id)
    if content.get("parties") != fresh:  # a person's details changed since the last save: freeze the current ones
        content["parties"] = fresh
        await _save_version(s, a, content, author, "parties refreshed at finalization")
    contents.validate(content, today=today or utcnow().date())
    v = await version_row(s, a.id, a.current_version)
    a.final_version, a.content_sha256, a.status, a.finalized_at = v.version, v.content_sha256, "final", utcnow()
    doc = await pdf_input(s, a, case, notary, content, v.content_sha256)
    pdf = await asyncio.to_thread(render, doc, notary.settings.font())
    a.unsigned_pdf, a.pdf_sha256 = pdf, sha256_hex(pdf)
    await s.flush()
    await audit.append(s, actor=author, action="agreement.finalize", subject=subject(case.code, a.id),
                       detail={"version": v.version, "content_sha256": v.content_sha256, "pdf_sha256": a.pdf_sha256})
    return await _view(s, a)


async def agreement_pdf(
    s: AsyncSession, agreement_id: int, *, viewer: str, sealed: bool = False, reason: str = ""
) -> bytes:
    """The unsigned rendering (what signers sign; its SHA-256 is in the payload) or the sealed PDF. Every read
    is an audit entry (architecture: security model)."""
    a = await agreement_row(s, agreement_id)
    data = a.sealed_pdf if sealed else a.unsigned_pdf
    if data is None:
        raise Conflict("该文件尚未生成 / that PDF does not exist yet", code="no_pdf", sealed=sealed)
    case = await case_row(s, a.case_id)
    await audit.append(s, actor=viewer, action="agreement.read", subject=subject(case.code, a.id),
                       detail={"sealed": sealed}, reason=reason or None)
    return data
