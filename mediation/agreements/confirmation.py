"""Joint application for judicial confirmation (R21-R24): eligibility, venue, the 30-day window, signatures.

Each party (or an agent for them) signs the application document with their bound device key, over
`payloads.application_payload_bytes` (canonical JSON, WebCrypto ECDSA P-256, raw r||s, base64). When every party
is covered the application is submitted to the chosen court and the court's clocks start (R26).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.agreements import payloads
from mediation.agreements._load import agreement_row, case_row, center_of, parties_snapshot
from mediation.agreements.agreement import get_agreement
from mediation.agreements.application_state import (
    application_row,
    application_signatures,
    missing_items,
    uncovered_parties,
)
from mediation.agreements.courts import CourtDirectory, CourtSuggestion, suggest_courts
from mediation.agreements.models import Agreement, ApplicationSignature, ConfirmationApplication
from mediation.agreements.signing import bound_key, person_of
from mediation.canonical import canonical_json, sha256_hex
from mediation.db import utcnow
from mediation.errors import Conflict, Expired, Forbidden, InvalidInput, NotFound
from mediation.models import Case

log = logging.getLogger(__name__)
WINDOW = dt.timedelta(days=30)  # CPL 205, PML 33
ACCEPT_WITHIN = dt.timedelta(days=3)  # JC 4
ACTIVE = ("draft", "submitted", "accepted")
RULED = ("confirmed", "rejected")  # the court's ruling on the agreement (mediation/agreements/judging.py)

INELIGIBLE = {  # R24, CPL-I 355
    "personal_status": "申请确认婚姻、亲子、收养等身份关系的，不属于司法确认范围（民诉法解释第三百五十五条第三项）"
                       " / marriage, parent-child or adoption status cannot be judicially confirmed",
    "special_procedure": "涉及适用其他特别程序、公示催告程序、破产程序审理的，不予受理（第三百五十五条第四项）"
                         " / matters under special, public-notice or bankruptcy procedures are excluded",
    "decides_ownership": "调解协议内容涉及物权、知识产权确权的，不予受理（第三百五十五条第五项）"
                         " / agreements deciding ownership of property or IP rights are excluded",
}


@dataclass
class Eligibility:
    eligible: bool
    reasons: list[dict[str, str]] = field(default_factory=list)  # [{code, message}]


@dataclass
class Deadline:
    effective_at: dt.datetime
    deadline_at: dt.datetime
    days_left: int
    expired: bool


@dataclass
class ApplicationView:
    id: int
    agreement_id: int
    case_id: int
    court_id: str
    status: str
    document: dict[str, Any]
    document_sha256: str
    deadline_at: dt.datetime
    submitted_at: dt.datetime | None
    acceptance_due: dt.datetime | None
    accepted_at: dt.datetime | None
    ruling_due: dt.datetime | None
    extended: bool
    signed_by: list[str]  # "person:<id>"
    unsigned_parties: list[int]


def app_subject(case_code: str, application_id: int) -> str:
    return f"case:{case_code}/application:{application_id}"


def eligibility_of(case: Case, content: dict[str, Any]) -> Eligibility:
    matters = content.get("matters") or {}
    codes = []
    if case.personal_status:
        codes.append("personal_status")
    codes += [k for k in ("special_procedure", "decides_ownership") if matters.get(k)]
    return Eligibility(not codes, [{"code": c, "message": INELIGIBLE[c]} for c in codes])


async def check_eligibility(s: AsyncSession, agreement_id: int) -> Eligibility:
    view = await get_agreement(s, agreement_id)
    return eligibility_of(await case_row(s, view.case_id), view.content)


def _deadline(a: Agreement, now: dt.datetime) -> Deadline:
    if a.effective_at is None:
        raise Conflict("协议尚未生效 / the agreement is not effective yet", code="not_effective")
    end = a.effective_at + WINDOW
    return Deadline(a.effective_at, end, (end - now).days if end > now else 0, now > end)


async def application_deadline(s: AsyncSession, agreement_id: int, *, now: dt.datetime | None = None) -> Deadline:
    return _deadline(await agreement_row(s, agreement_id), now or utcnow())


async def suggest_court(s: AsyncSession, agreement_id: int, courts: CourtDirectory) -> list[CourtSuggestion]:
    view = await get_agreement(s, agreement_id)
    case = await case_row(s, view.case_id)
    center = await center_of(s, case)
    if case.referring_court_id:
        await courts.lookup(s, case.referring_court_id)  # created on another node since this one last loaded
    await courts.fresh(s)  # venue by place: courts created elsewhere in the last minute
    return suggest_courts(
        courts, referring_court_id=case.referring_court_id,
        party_addresses=[p["address"] for p in view.content["parties"] if p["kind"] == "party"],
        property_location=(view.content.get("property") or {}).get("location", ""), center_address=center.address,
    )


@dataclass
class Reminder:
    agreement_id: int
    case_id: int
    case_code: str
    deadline_at: dt.datetime
    days_left: int
    expired: bool


async def reminders_due(s: AsyncSession, *, within_days: int = 7, now: dt.datetime | None = None) -> list[Reminder]:
    """Effective agreements without a submitted application whose 30-day window ends within `within_days` (or
    has ended: `expired` — warn, R21)."""
    now = now or utcnow()
    applied = select(ConfirmationApplication.agreement_id).where(ConfirmationApplication.status != "draft")
    q = (select(Agreement, Case.code).join(Case, Case.id == Agreement.case_id)
         .where(Agreement.status.in_(("effective", "sealed")), Agreement.id.not_in(applied)))
    out = []
    for a, code in (await s.execute(q)).all():
        d = _deadline(a, now)
        if d.deadline_at - now <= dt.timedelta(days=within_days):
            out.append(Reminder(a.id, a.case_id, code, d.deadline_at, d.days_left, d.expired))
    return sorted(out, key=lambda r: r.deadline_at)


async def _locked_application(s: AsyncSession, application_id: int) -> ConfirmationApplication:
    q = (select(ConfirmationApplication).where(ConfirmationApplication.id == application_id).with_for_update()
         .execution_options(populate_existing=True))
    app = (await s.scalars(q)).first()
    if app is None:
        raise NotFound("司法确认申请不存在 / no such application", code="no_application")
    return app


async def get_application(s: AsyncSession, application_id: int) -> ApplicationView:
    app = await application_row(s, application_id)
    doc, sigs = json.loads(app.document), await application_signatures(s, app.id)
    return ApplicationView(app.id, app.agreement_id, app.case_id, app.court_id, app.status, doc, app.document_sha256,
                           app.deadline_at, app.submitted_at, app.acceptance_due, app.accepted_at, app.ruling_due,
                           app.extended, [r.signer for r in sigs], uncovered_parties(doc, sigs))


def _check_window(a: Agreement, now: dt.datetime) -> Deadline:
    d = _deadline(a, now)
    if d.expired:
        raise Expired(
            f"已超过申请司法确认的三十日期限（截止 {d.deadline_at:%Y-%m-%d %H:%M} UTC）/ the 30-day window for "
            "judicial confirmation has passed (CPL 205)", code="confirmation_window_passed",
            deadline_at=d.deadline_at.isoformat(),
        )
    return d


async def start_application(
    s: AsyncSession, agreement_id: int, *, court_id: str, courts: CourtDirectory, actor: str,
    now: dt.datetime | None = None,
) -> ApplicationView:
    """Prepare the joint application to `court_id`; it is submitted once every party has signed it."""
    now = now or utcnow()
    a = await agreement_row(s, agreement_id, lock=True)
    case = await case_row(s, a.case_id)
    if a.status not in ("effective", "sealed"):
        raise Conflict("协议尚未生效 / the agreement is not effective yet", code="not_effective")
    d = _check_window(a, now)
    view = await get_agreement(s, a.id)
    elig = eligibility_of(case, view.content)
    if not elig.eligible:
        raise Forbidden(elig.reasons[0]["message"], code="not_eligible", reasons=elig.reasons)
    suggestions = await suggest_court(s, a.id, courts)
    if court_id not in {x.court_id for x in suggestions}:
        raise InvalidInput("该法院对本协议无管辖权 / that court has no jurisdiction here (CPL 205)",
                           code="no_jurisdiction", suggestions=[x.court_id for x in suggestions])
    q = select(ConfirmationApplication.status).where(ConfirmationApplication.agreement_id == a.id,
                                                     ConfirmationApplication.status.in_((*ACTIVE, *RULED)))
    earlier = set((await s.scalars(q)).all())
    if earlier & set(RULED):  # CPL 206: after a rejection the parties change the agreement or make a new one
        raise Conflict("法院已对本协议作出裁定，不能再次申请；如被驳回，可经调解变更原协议或达成新协议 / the court has "
                       "ruled on this agreement: no second application (after a rejection, change it or make a "
                       "new one in mediation, CPL 206)", code="already_ruled")
    if earlier:
        raise Conflict("已有进行中的司法确认申请 / an application is already under way", code="application_exists")
    court, center = courts.get(court_id), await center_of(s, case)
    document = {
        "type": "onedoor-confirmation-application", "case": case.code, "agreement_id": a.id,
        "agreement_version": a.final_version, "content_sha256": a.content_sha256, "pdf_sha256": a.pdf_sha256,
        "court": {"id": court.id, "name": court.name},
        "request": "请求人民法院确认双方于调解组织主持下达成的人民调解协议有效 / we jointly apply for "
                   "confirmation of the mediation agreement",
        "applicants": await parties_snapshot(s, case.id),
        "mediation_organization": {"name": center.name, "address": center.address},
        "effective_at": d.effective_at.isoformat(timespec="microseconds"),
        "deadline_at": d.deadline_at.isoformat(timespec="microseconds"),
        "prepared_at": now.isoformat(timespec="microseconds"),
    }
    text = canonical_json(document).decode()
    app = ConfirmationApplication(agreement_id=a.id, case_id=case.id, court_id=court_id, status="draft",
                                  document=text, document_sha256=sha256_hex(text.encode()), deadline_at=d.deadline_at,
                                  created_by=actor)
    s.add(app)
    await s.flush()
    await audit.append(s, actor=actor, action="application.start", subject=app_subject(case.code, app.id),
                       detail={"court_id": court_id, "agreement_id": a.id})
    return await get_application(s, app.id)


async def application_payload(s: AsyncSession, application_id: int, *, person_id: int) -> bytes:
    app = await application_row(s, application_id)
    case = await case_row(s, app.case_id)
    p = await person_of(s, case, person_id)
    return payloads.application_payload_bytes(case_code=case.code, application_id=app.id,
                                              document_sha256=app.document_sha256, signer=f"person:{p.id}")


async def sign_application(
    s: AsyncSession, application_id: int, *, person_id: int, invite_id: int, signature_b64: str,
    now: dt.datetime | None = None,
) -> ApplicationView:
    """A party (or agent) signs the joint application; the last one submits it. Late signatures are refused."""
    now = now or utcnow()
    # the row lock (PostgreSQL) serializes the signers of one application, so the last of two concurrent
    # signatures sees the other and submits; SQLite serializes at the first write
    app = await _locked_application(s, application_id)
    case = await case_row(s, app.case_id)
    if app.status != "draft":
        raise Conflict("申请已提交 / the application was already submitted", code="already_submitted")
    _check_window(await agreement_row(s, app.agreement_id), now)
    person = await person_of(s, case, person_id)
    signer = f"person:{person.id}"
    if any(r.signer == signer for r in await application_signatures(s, app.id)):
        raise Conflict("您已签署申请 / already signed", code="already_signed")
    principal = person.id if person.kind == "party" else person.represents_id
    if principal not in uncovered_parties(json.loads(app.document), await application_signatures(s, app.id)):
        raise Conflict("已为该当事人签署申请 / already signed for this party", code="already_signed")
    spki = await bound_key(s, case, person, invite_id)
    sig = payloads.decode_b64(signature_b64, "signature")
    msg = await application_payload(s, app.id, person_id=person.id)
    if not payloads.verify_signature(payloads.ECDSA_P256, spki, sig, msg):
        raise InvalidInput("签名无效：须使用本人绑定设备的密钥签署申请 / signature invalid: sign with your bound "
                           "device key", code="bad_signature")
    s.add(ApplicationSignature(
        application_id=app.id, signer=signer, role=person.kind, person_id=person.id, invite_id=invite_id,
        name=person.name, side=person.side, algorithm=payloads.ECDSA_P256, public_key=base64.b64encode(spki).decode(),
        key_fingerprint=payloads.key_fingerprint(spki), signature=base64.b64encode(sig).decode(), signed_at=now))
    try:  # the unique (application, signer) constraint decides between two concurrent signatures of one signer
        await s.flush()
    except IntegrityError:  # the transaction is rolled back with the Conflict
        raise Conflict("您已签署申请 / already signed", code="already_signed") from None
    await audit.append(s, actor=signer, action="application.sign", subject=app_subject(case.code, app.id),
                       detail={"key_fingerprint": payloads.key_fingerprint(spki)})
    await try_submit(s, app.id, now=now)
    return await get_application(s, app.id)


async def try_submit(s: AsyncSession, application_id: int, *, now: dt.datetime | None = None) -> bool:
    """Submit the application if every party signed and the package (R23) is complete; start the court clock."""
    now = now or utcnow()
    app = await application_row(s, application_id)
    if app.status != "draft" or await missing_items(s, app.id):
        return False
    case = await case_row(s, app.case_id)
    app.status, app.submitted_at, app.acceptance_due = "submitted", now, now + ACCEPT_WITHIN
    await s.flush()
    await audit.append(s, actor="system", action="application.submit", subject=app_subject(case.code, app.id),
                       detail={"court_id": app.court_id, "acceptance_due": app.acceptance_due.isoformat()})
    return True
