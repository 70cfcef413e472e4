"""Each person's copy (R20): a party (or agent) keeps its own documents after the session has ended.

The party proves itself the way it joins a session (mediation.lobby): its invite token and a signature by the
device key bound to that invite over a fresh single-use challenge (`sessions.make_challenge`/`prove_device`) — but
the session need not be live, or even open: the bound device is the credential, so the link's expiry (which limits
when a forwarded link could first be bound) does not end it. A reissued link (new token, binding reset) ends the
old device's access. Another device, or a link never opened on a device, gets nothing.

Documents: the agreement as signed (the unsigned rendering every signer signed over), the sealed agreement, the
joint application (a PDF of the signed document with its signatures), and the court's ruling (裁定书, a PDF signed
by the court's key). Electronic service needs the person's consent, asked once and logged (PML 29, OLR 29-31);
each download is recorded with the time its last byte was written (`delivered`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit, sessions, transcript
from mediation.access import Actor, Resource, check
from mediation.agreements import judging
from mediation.agreements._load import center_of
from mediation.agreements.agreement import beijing_time, subject
from mediation.agreements.confirmation import app_subject
from mediation.agreements.courts import CourtDirectory
from mediation.agreements.models import Agreement, ApplicationSignature, ConfirmationApplication
from mediation.agreements.notary import Notary
from mediation.agreements.pdf import SIDE_LABELS, DocumentInput, render_document
from mediation.canonical import sha256_hex
from mediation.db import Database, utcnow
from mediation.errors import Conflict, Forbidden, NotFound, Unauthenticated
from mediation.models import Case, Invite, MediationSession, Person
from mediation.permissions import Action, SessionRole
from mediation.resources import case_by_code, case_resource
from mediation.service_records import DocumentDelivery, ServiceConsent

KINDS = ("agreement", "agreement_unsigned", "application", "ruling")
LABELS = {"agreement": "调解协议书（已签署封存）", "agreement_unsigned": "调解协议书（签署文本）",
          "application": "司法确认申请书", "ruling": "民事裁定书"}


@dataclass(frozen=True)
class Proof:
    token: str
    challenge: str
    signature: str


@dataclass(frozen=True)
class Document:
    kind: str
    filename: str
    data: bytes
    sha256: str
    headers: dict[str, str]


@dataclass(frozen=True)
class ProvenParty:
    invite: Invite
    person: Person
    case: Case
    actor: Actor


async def _invite(s: AsyncSession, token: str) -> Invite:
    """The invite a token names (expiry not applied: see the module docstring); bound to a device, of a person."""
    if not isinstance(token, str) or not 16 <= len(token) <= 100:
        raise Unauthenticated("this link is not valid", code="bad_invite")
    inv = await s.scalar(select(Invite).where(Invite.token_hash == sessions.hash_token(token)))
    if inv is None or inv.revoked:
        raise Unauthenticated("this link is not valid", code="bad_invite")
    if inv.person_id is None:
        raise Forbidden("只有当事人和代理人有文书副本 / copies are for parties and agents", code="not_a_party")
    if inv.device_key is None:
        raise Forbidden("请先在您的手机上打开调解邀请链接 / open the invite link on your device first",
                        code="device_not_bound")
    return inv


async def prove_party(s: AsyncSession, proof: Proof, secret: bytes) -> ProvenParty:
    """The party (invite, person, case, actor) a device proof over a fresh challenge vouches for; also the
    after-session transcript review's authentication (mediation.transcript_review)."""
    return await _party(s, proof, secret)


async def _party(s: AsyncSession, proof: Proof, secret: bytes) -> ProvenParty:
    inv = await _invite(s, proof.token)
    await sessions.prove_device(s, inv, challenge=proof.challenge, signature=proof.signature, public_key=None,
                                secret=secret)
    actor = Actor(f"inv-{inv.id}", SessionRole(inv.role), session_id=inv.session_id)
    check(actor, Action.PARTY_COPIES, Resource("case", session_id=inv.session_id))
    sess = await s.get(MediationSession, inv.session_id)
    case = await s.get(Case, sess.case_id) if sess else None
    person = await s.get(Person, inv.person_id)
    if case is None or person is None or person.case_id != case.id:
        raise NotFound("no such case", code="case_not_found")
    return ProvenParty(inv, person, case, actor)


async def _latest(s: AsyncSession, case_id: int) -> tuple[Agreement | None, ConfirmationApplication | None]:
    a = (await s.scalars(select(Agreement).where(Agreement.case_id == case_id, Agreement.final_version.is_not(None))
                         .order_by(Agreement.id.desc()))).first()
    if a is None:
        return None, None
    app = (await s.scalars(select(ConfirmationApplication).where(ConfirmationApplication.agreement_id == a.id)
                           .order_by(ConfirmationApplication.id.desc()))).first()
    return a, app


def application_input(case: Case, app: ConfirmationApplication, sigs: list[ApplicationSignature],
                      verify_url: str) -> DocumentInput:
    """A party's copy of the joint application: the signed document's words and who signed it when."""
    d = json.loads(app.document)
    lines = []
    for p in d.get("applicants", []):
        label = "申请人" if p["kind"] == "party" else "委托代理人"
        lines.append(f"{label}（{SIDE_LABELS.get(p['side'], p['side'])}）：{p['name']}，身份证件号码：{p.get('id_number') or '—'}，"
                     f"住所：{p.get('address') or '—'}，联系电话：{p.get('phone') or '—'}")
    signed = [f"{r.name}（{SIDE_LABELS.get(r.side or '', r.side)}）于 {beijing_time(r.signed_at)} 以设备密钥签名，公钥指纹 {r.key_fingerprint}"
              for r in sigs] or ["（尚无签名）"]
    org = d.get("mediation_organization") or {}
    return DocumentInput(
        title="司法确认申请书", subtitle=d["court"]["name"],
        meta=[f"案件编号：{case.code}    申请编号：{app.id}", f"调解组织：{org.get('name', '')}",
              f"协议编号：{d['agreement_id']}-v{d['agreement_version']}"],
        sections=[("申请人", "\n".join(lines)), ("请求事项", d.get("request", "")),
                  ("期限", f"协议生效时间：{d.get('effective_at', '')}；申请期限届满：{d.get('deadline_at', '')}"
                         "（协议生效之日起三十日内，民事诉讼法第二百零五条）"),
                  ("签名", "\n".join(signed))],
        small_print=[f"申请书（规范化 JSON）SHA-256：{app.document_sha256}",
                     f"调解协议内容 SHA-256：{d.get('content_sha256') or '—'}；签署文本 PDF SHA-256：{d.get('pdf_sha256') or '—'}",
                     f"本文件为申请书的副本，状态：{app.status}。"],
        verify_url=verify_url, footer=f"{case.code} · 司法确认申请书 · 申请 {app.id}", author=org.get("name", ""),
        subject=f"application {app.id}",
    )


class PartyCopies:
    """The party's documents, and the center's and court's copy of the ruling."""

    def __init__(self, db: Database, notary: Callable[[], Notary], courts: Callable[[], CourtDirectory],
                 secret: bytes) -> None:
        self.db, self._notary, self._courts, self.secret = db, notary, courts, secret

    async def challenge(self, token: str) -> dict[str, Any]:
        """A fresh single-use challenge for the device proof (the invite must be bound to a device)."""
        async with self.db.session() as s:
            inv = await _invite(s, token)
            return {"challenge": sessions.make_challenge(self.secret, inv.id)}

    async def listing(self, proof: Proof) -> dict[str, Any]:
        """What this party may download, its consent to electronic service, and its past downloads."""
        async with self.db.session() as s:
            p = await _party(s, proof, self.secret)
            a, app = await _latest(s, p.case.id)
            ruling = await judging.ruling_for(s, app.id) if app else None
            consent = await s.get(ServiceConsent, p.person.id)
            docs = []
            if a is not None:
                docs.append(self._entry("agreement_unsigned", a.pdf_sha256, a.finalized_at, True))
                docs.append(self._entry("agreement", sha256_hex(a.sealed_pdf) if a.sealed_pdf else None,
                                        a.sealed_at, a.sealed_pdf is not None))
            if app is not None:
                docs.append(self._entry("application", app.document_sha256, app.submitted_at or app.created_at, True,
                                        status=app.status))
            if ruling is not None:
                served = await s.scalar(select(func.min(DocumentDelivery.delivered_at)).where(
                    DocumentDelivery.person_id == p.person.id, DocumentDelivery.document == "ruling"))
                docs.append(self._entry("ruling", None, ruling.ruled_at, True, outcome=ruling.outcome,
                                        ground=ruling.ground, outcome_label=judging.OUTCOMES[ruling.outcome],
                                        ground_label=judging.REJECTION_GROUNDS.get(ruling.ground or ""),
                                        objections=judging.served_windows(ruling.objections, served)))
            q = (select(DocumentDelivery).where(DocumentDelivery.person_id == p.person.id)
                 .order_by(DocumentDelivery.delivered_at.desc(), DocumentDelivery.id.desc()).limit(50))
            delivered = [{"document": d.document, "sha256": d.sha256, "delivered_at": d.delivered_at.isoformat()}
                         for d in (await s.scalars(q)).all()]
            review = await transcript.for_review(s, p.invite.session_id, p.person.id)
            review.pop("document", None)  # the entries come with POST /api/party/transcript
            await audit.append(s, actor=p.actor.id, action="copies.list", subject=f"case:{p.case.code}")
            return {"case": {"code": p.case.code}, "name": p.person.name, "role": p.invite.role,
                    "transcript": review,
                    "service_consent": None if consent is None else {"granted": consent.granted,
                                                                     "at": consent.at.isoformat()},
                    "documents": docs, "delivered": delivered}

    @staticmethod
    def _entry(kind: str, sha: str | None, at: dt.datetime | None, available: bool, **extra: Any) -> dict[str, Any]:
        return {"kind": kind, "label": LABELS[kind], "available": available, "sha256": sha,
                "at": at.isoformat() if at else None, **extra}

    async def consent(self, proof: Proof, granted: bool) -> dict[str, Any]:
        """Consent (or not) to electronic service; asked once by the page, every answer logged."""
        async with self.db.session() as s:
            p = await _party(s, proof, self.secret)
            row = await s.get(ServiceConsent, p.person.id)
            if row is None:
                row = ServiceConsent(person_id=p.person.id, invite_id=p.invite.id, granted=granted,
                                     device_fingerprint=p.invite.device_fingerprint or "", at=utcnow())
                s.add(row)
            row.granted, row.invite_id, row.at = granted, p.invite.id, utcnow()
            row.device_fingerprint = p.invite.device_fingerprint or ""
            await s.flush()
            await audit.append(s, actor=p.actor.id, action="copies.service_consent", subject=f"case:{p.case.code}",
                               detail={"person_id": p.person.id, "granted": granted,
                                       "device": p.invite.device_fingerprint})
            return {"granted": row.granted, "at": row.at.isoformat()}

    async def document(self, proof: Proof, kind: str) -> tuple[Document, int, int]:
        """One document for this party's own device; (document, person id, invite id) for `delivered`."""
        if kind not in KINDS:
            raise NotFound("no such document", code="document_not_found")
        async with self.db.session() as s:
            p = await _party(s, proof, self.secret)
            consent = await s.get(ServiceConsent, p.person.id)
            if consent is None or not consent.granted:
                raise Forbidden("电子送达须经您同意 / electronic service needs your consent first",
                                code="service_consent_required")
            doc = await self._document(s, p.case, kind)
            await audit.append(s, actor=p.actor.id, action="copies.download", subject=f"case:{p.case.code}",
                               detail={"document": kind, "sha256": doc.sha256})
            return doc, p.person.id, p.invite.id

    async def delivered(self, person_id: int, invite_id: int, doc: Document, at: dt.datetime) -> None:
        """The document's last byte was written to the party's connection at `at`: record the time it reached
        them (taken by the caller when the write returned, so deliveries recorded concurrently keep their order)."""
        async with self.db.session() as s:
            inv = await s.get(Invite, invite_id)
            row = DocumentDelivery(person_id=person_id, invite_id=invite_id, document=doc.kind, sha256=doc.sha256,
                                   device_fingerprint=(inv.device_fingerprint if inv else "") or "",
                                   delivered_at=at)
            s.add(row)
            await s.flush()
            await audit.append(s, actor=f"inv-{invite_id}", action="copies.delivered",
                               subject=f"invite:{invite_id}",
                               detail={"document": doc.kind, "sha256": doc.sha256,
                                       "delivered_at": row.delivered_at.isoformat()})

    async def _document(self, s: AsyncSession, case: Case, kind: str) -> Document:
        a, app = await _latest(s, case.id)
        notary = self._notary()
        if kind in ("agreement", "agreement_unsigned"):
            data = (a.sealed_pdf if kind == "agreement" else a.unsigned_pdf) if a else None
            if a is None or data is None:
                raise Conflict("该文件尚未生成 / that document does not exist yet", code="no_document")
            await audit.append(s, actor="copies", action="agreement.read", subject=subject(case.code, a.id),
                               detail={"sealed": kind == "agreement"}, reason="party's copy (R20)")
            name = f"{case.code}-{'sealed' if kind == 'agreement' else 'unsigned'}.pdf"
            return Document(kind, name, data, sha256_hex(data), {})
        if app is None:
            raise Conflict("该文件尚未生成 / that document does not exist yet", code="no_document")
        if kind == "application":
            sigs = list((await s.scalars(select(ApplicationSignature).where(
                ApplicationSignature.application_id == app.id).order_by(ApplicationSignature.id))).all())
            doc_in = application_input(case, app, sigs, notary.settings.verification_url(case.code))
            data = await asyncio.to_thread(render_document, doc_in, notary.settings.font())
            return Document(kind, f"{case.code}-application-{app.id}.pdf", data, sha256_hex(data), {})
        row = await self._ruling_row(s, case, app.id)
        return Document(kind, f"{case.code}-ruling-{app.id}.pdf", row.pdf, row.sha256,
                        {"X-Court-Signature": row.signature, "X-Court-Key-Fingerprint": row.court_key_fingerprint})

    async def _ruling_row(self, s: AsyncSession, case: Case, app_id: int) -> Any:
        notary = self._notary()
        center = await center_of(s, case)
        row = await judging.ruling_document(s, app_id, courts=self._courts(), center_name=center.name,
                                            verify_url=notary.settings.verification_url(case.code),
                                            font=notary.settings.font())
        if row is None:
            raise Conflict("法院尚未作出裁定 / the court has not ruled yet", code="no_document")
        return row

    # ---- the center's and the court's copy of the ruling ------------------------------------------------------
    async def ruling_for_center(self, actor: Actor, code: str) -> Document:
        """The ruling PDF of the case's latest application, for staff of the case's center (logged)."""
        async with self.db.session() as s:
            case = await case_by_code(s, code)
            check(actor, Action.AGREEMENT_VIEW, await case_resource(s, case))
            _, app = await _latest(s, case.id)
            if app is None:
                raise Conflict("法院尚未作出裁定 / the court has not ruled yet", code="no_document")
            row = await self._ruling_row(s, case, app.id)
            await audit.append(s, actor=actor.id, action="ruling.read", subject=app_subject(case.code, app.id))
            return Document("ruling", f"{case.code}-ruling-{app.id}.pdf", row.pdf, row.sha256,
                            {"X-Court-Signature": row.signature,
                             "X-Court-Key-Fingerprint": row.court_key_fingerprint})

    async def ruling_for_court(self, actor: Actor, app_id: int) -> Document:
        """The ruling PDF for a judge of the court the application was sent to (logged as a judge's view)."""
        async with self.db.session() as s:
            app = await s.get(ConfirmationApplication, app_id)
            if app is None:
                raise NotFound("no such application", code="no_application")
            check(actor, Action.COURT_VIEW, Resource("application", courts=frozenset({app.court_id})))
            case = await s.get(Case, app.case_id)
            assert case is not None
            row = await self._ruling_row(s, case, app.id)
            await audit.append(s, actor=actor.id, action="judge_viewed", subject=app_subject(case.code, app.id),
                               detail={"what": "ruling"})
            return Document("ruling", f"{case.code}-ruling-{app.id}.pdf", row.pdf, row.sha256,
                            {"X-Court-Signature": row.signature,
                             "X-Court-Key-Fingerprint": row.court_key_fingerprint})
