"""The case file (issue 13 item 1): photos and PDFs that parties and staff put into a case, before or during a
session, and showing one of them in a live session.

- Types are sniffed from the content (magic bytes), never taken from the name or the browser: JPEG, PNG, PDF;
  at most `MAX_SIZE`. Images are re-encoded before they are stored (no EXIF/GPS); PDFs are stored as uploaded and
  never parsed, rendered or executed (the `DocumentVault` port; recordings.documents_store implements it).
- Stored encrypted with a data key of its own, wrapped like a recording's; the SHA-256 of what is stored goes into
  the audit log with the upload; every read is an audit entry (who, which, why).
- Showing a document in a session sends it to the admitted people on the shower's side of the caucus only
  (`LiveSession.same_side_of_caucus`): shown inside a caucus it stays inside (R9), and a document shown only
  inside a caucus is privileged: it is never listed for, or sent to, a court.
- Parties reach the case file through their session connection: `ticket()` makes a short-lived HMAC ticket bound
  to (session, participant, role, purpose) that the HTTP upload/read routes accept instead of a staff login.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.access import Actor, Resource, check
from mediation.canonical import sha256_hex
from mediation.casefile_records import CaseDocument
from mediation.db import Database, utcnow
from mediation.errors import Forbidden, InvalidInput, NotFound, TooLarge, Unauthenticated
from mediation.live import LiveSession, Presence
from mediation.models import Case, Guest, Invite, MediationSession, Person, StaffUser
from mediation.permissions import Action, SessionRole
from mediation.resources import case_by_code

MAX_SIZE = 10 * 1024 * 1024
PURPOSES = ("evidence", "power_of_attorney", "property_proof", "other")
IMAGE_TYPES = ("image/jpeg", "image/png")
TICKET_TTL = dt.timedelta(minutes=10)
_SAFE = re.compile(r"[^\w.\-\u3400-\u9fff]+")


@dataclass(frozen=True)
class Sealed:
    """What the vault stored: the plaintext's hash and size after sanitising, and the stored ciphertext's hash."""

    sha256: str
    size: int
    stored_sha256: str


class DocumentVault(Protocol):
    """Where documents' bytes go (recordings.documents_store.DocumentStore)."""

    async def put(self, s: AsyncSession, doc_id: str, case_code: str, media_type: str, data: bytes) -> Sealed: ...
    async def get(self, s: AsyncSession, doc: CaseDocument) -> bytes: ...
    async def encrypted(self, doc_id: str) -> bytes: ...
    async def court_wrap(self, s: AsyncSession, doc: CaseDocument, court_id: str, court_public_b64: str
                         ) -> bytes: ...


def sniff(data: bytes) -> str:
    """The media type from the first bytes; anything but JPEG, PNG or PDF is refused."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:5] == b"%PDF-":
        return "application/pdf"
    raise InvalidInput("只接受 JPEG、PNG 图片或 PDF 文件 / only JPEG, PNG or PDF", code="unsupported_type")


def safe_filename(name: str, media_type: str) -> str:
    ext = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf"}[media_type]
    stem = _SAFE.sub("_", name.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip("._")[:80] or "document"
    stem = stem.rsplit(".", 1)[0] if "." in stem else stem
    return stem + ext


def subject(case_code: str, doc_id: str) -> str:
    return f"case:{case_code}/document:{doc_id}"


def public(doc: CaseDocument) -> dict[str, Any]:
    return {"id": doc.id, "purpose": doc.purpose, "filename": doc.filename, "media_type": doc.media_type,
            "size": doc.size, "sha256": doc.sha256, "uploaded_by": doc.uploaded_by, "uploader": doc.uploader_name,
            "uploaded_at": doc.uploaded_at.isoformat(), "person_id": doc.person_id, "session_id": doc.session_id,
            "shown_jointly": doc.shown_jointly, "privileged": doc.privileged}


# ---- tickets: a participant's session connection vouches for one HTTP upload or read --------------------------

def ticket(secret: bytes, actor: Actor, purpose: str, now: dt.datetime | None = None) -> str:
    """`purpose`: "upload" or "read:<document id>"."""
    assert actor.session_id is not None
    exp = int(((now or utcnow()) + TICKET_TTL).timestamp())
    body = f"{actor.session_id}.{actor.id}.{actor.role}.{purpose}.{exp}.{secrets.token_urlsafe(8)}"
    return body + "." + hmac.new(secret, b"onedoor-doc-ticket|" + body.encode(), hashlib.sha256).hexdigest()[:32]


def ticket_actor(secret: bytes, value: str, purpose: str, now: dt.datetime | None = None) -> Actor:
    """The participant a ticket vouches for; refused if forged, expired or for another purpose."""
    if not value:
        raise InvalidInput("ticket required (from the session connection)", code="ticket_required")
    body, _, mac = value.rpartition(".")
    good = hmac.new(secret, b"onedoor-doc-ticket|" + body.encode(), hashlib.sha256).hexdigest()[:32]
    parts = body.split(".")
    if not body or not hmac.compare_digest(mac, good) or len(parts) < 6:
        raise Unauthenticated("无效的凭据 / invalid ticket", code="bad_ticket")
    session_id, pid, role, exp = parts[0], parts[1], parts[2], parts[-2]
    if ".".join(parts[3:-2]) != purpose:
        raise Unauthenticated("无效的凭据 / invalid ticket", code="bad_ticket")
    if int(exp) < int((now or utcnow()).timestamp()):
        raise Unauthenticated("凭据已过期 / the ticket expired", code="ticket_expired")
    staff_id = int(pid[6:]) if pid.startswith("staff-") else None
    return Actor(pid, SessionRole(role), session_id=int(session_id), staff_id=staff_id)


# ---- use cases ------------------------------------------------------------------------------------------------

async def _case_for(s: AsyncSession, actor: Actor, code: str | None, action: Action) -> Case:
    """The case a staff member names (their center's) or the case of a participant's session."""
    if actor.session_id is not None:
        sess = await s.get(MediationSession, actor.session_id)
        case = await s.get(Case, sess.case_id) if sess else None
        if case is None or (code is not None and case.code != code):
            raise NotFound("no such case", code="case_not_found")
        check(actor, action, Resource("case", center_id=case.center_id, session_id=actor.session_id))
        return case
    assert code is not None
    case = await case_by_code(s, code)
    check(actor, action, Resource("case", center_id=case.center_id))
    return case


async def _name(s: AsyncSession, actor: Actor) -> tuple[str, int | None]:
    """(display name, person id) of whoever uploads."""
    if actor.staff_id is not None:
        user = await s.get(StaffUser, actor.staff_id)
        return (user.display_name if user else actor.id), None
    inv = await s.get(Invite, int(actor.id[4:])) if actor.id.startswith("inv-") else None
    if inv is None:
        return actor.id, None
    person = await s.get(Person, inv.person_id) if inv.person_id else None
    guest = await s.get(Guest, inv.guest_id) if inv.guest_id else None
    return (person.name if person else guest.name if guest else actor.id), inv.person_id


def _visible_to(doc: CaseDocument, actor: Actor, person_id: int | None) -> bool:
    """Staff of the center see the whole file; a participant sees what it uploaded and what was shown jointly."""
    if actor.session_id is None or actor.role in (SessionRole.HOST, SessionRole.CO_MEDIATOR):
        return True
    return doc.uploaded_by == actor.id or (person_id is not None and doc.person_id == person_id) or doc.shown_jointly


class CaseFile:
    def __init__(self, db: Database, vault: DocumentVault, secret: bytes) -> None:
        self.db, self.vault, self.secret = db, vault, secret

    async def upload(self, actor: Actor, code: str | None, *, filename: str, data: bytes, purpose: str = "evidence",
                     person_id: int | None = None, in_caucus: bool = False) -> dict[str, Any]:
        """Check size and type, sanitise and encrypt, record (the hash goes into the audit log)."""
        if purpose not in PURPOSES:
            raise InvalidInput(f"unknown purpose '{purpose}'", code="invalid_purpose", choices=list(PURPOSES))
        if len(data) > MAX_SIZE:
            raise TooLarge("文件过大（最大 10 MB）/ file too large (10 MB at most)", code="too_large")
        if not data:
            raise InvalidInput("空文件 / empty file", code="bad_document")
        media_type = sniff(data)
        async with self.db.session() as s:
            case = await _case_for(s, actor, code, Action.DOCUMENT_UPLOAD)
            name, own_person = await _name(s, actor)
            if person_id is not None:
                p = await s.get(Person, person_id)
                if p is None or p.case_id != case.id:
                    raise NotFound("no such person in this case", code="person_not_found")
            elif purpose == "power_of_attorney":
                raise InvalidInput("授权委托书须注明受托代理人 / a power of attorney names its agent",
                                   code="missing_field", field="person_id")
            doc_id = "doc-" + secrets.token_hex(10)
            sealed = await self.vault.put(s, doc_id, case.code, media_type, data)
            doc = CaseDocument(id=doc_id, case_id=case.id, session_id=actor.session_id, purpose=purpose,
                               person_id=person_id if person_id is not None else own_person,
                               filename=safe_filename(filename, media_type), media_type=media_type, size=sealed.size,
                               sha256=sealed.sha256, original_sha256=sha256_hex(data), uploaded_by=actor.id,
                               uploader_name=name, uploaded_at=utcnow(), shown_jointly=False,
                               shown_in_caucus=in_caucus)
            s.add(doc)
            await s.flush()
            await audit.append(s, actor=actor.id, action="document.upload", subject=subject(case.code, doc_id),
                               detail={"purpose": purpose, "media_type": media_type, "size": sealed.size,
                                       "sha256": sealed.sha256, "original_sha256": doc.original_sha256,
                                       "stored_sha256": sealed.stored_sha256, "person_id": doc.person_id,
                                       "session_id": actor.session_id})
            return public(doc)

    async def listing(self, actor: Actor, code: str | None) -> list[dict[str, Any]]:
        async with self.db.session() as s:
            case = await _case_for(s, actor, code, Action.DOCUMENT_READ)
            _, person_id = await _name(s, actor)
            docs = (await s.scalars(select(CaseDocument).where(CaseDocument.case_id == case.id)
                                    .order_by(CaseDocument.uploaded_at))).all()
            return [public(d) for d in docs if _visible_to(d, actor, person_id)]

    async def read(self, actor: Actor, doc_id: str, reason: str, *, code: str | None = None,
                   by_ticket: bool = False) -> tuple[dict[str, Any], bytes]:
        """A document's content; every read is an audit entry. A ticket (issued when the document was shown to
        this participant) is the participant's proof it may see it."""
        async with self.db.session() as s:
            doc = await s.get(CaseDocument, doc_id)
            case = await s.get(Case, doc.case_id) if doc else None
            if doc is None or case is None or (code is not None and case.code != code):
                raise NotFound("no such document", code="document_not_found")
            await _case_for(s, actor, case.code, Action.DOCUMENT_READ)
            _, person_id = await _name(s, actor)
            if not by_ticket and not _visible_to(doc, actor, person_id):
                raise NotFound("no such document", code="document_not_found")
            data = await self.vault.get(s, doc)
            await audit.append(s, actor=actor.id, action="document.read", subject=subject(case.code, doc.id),
                               detail={"sha256": doc.sha256}, reason=reason or None)
            return public(doc), data

    async def show(self, live: LiveSession, me: Presence, actor: Actor, doc_id: str
                   ) -> tuple[dict[str, Any], dict[str, str]]:
        """Show a document in the live session: returns it and, per recipient (the admitted people on the
        shower's side of the caucus, R9), a read ticket."""
        inside = me.pid in live.caucus
        async with self.db.session() as s:
            doc = await s.get(CaseDocument, doc_id)
            case = await s.get(Case, doc.case_id) if doc else None
            if doc is None or case is None or case.code != live.case_code:
                raise NotFound("no such document", code="document_not_found")
            check(actor, Action.DOCUMENT_SHOW, Resource("case", center_id=case.center_id,
                                                         session_id=live.session_id))
            _, person_id = await _name(s, actor)
            if not me.is_mediator and doc.uploaded_by != actor.id and doc.person_id != person_id:
                raise Forbidden("只能展示自己上传的材料 / you may show only what you uploaded", code="forbidden")
            if doc.privileged and not inside:
                raise Forbidden("该材料仅在背靠背中出示过，不能公开出示 / shown only in a caucus (R9)",
                                code="privileged")
            recipients = [p for p in live.admitted() if live.same_side_of_caucus(me.pid, p.pid)]
            if inside:
                doc.shown_in_caucus = True
            else:
                doc.shown_jointly = True
            await audit.append(s, actor=actor.id, action="document.shown", subject=subject(case.code, doc.id),
                               detail={"session_id": live.session_id, "caucus": inside,
                                       "to": sorted(p.pid for p in recipients), "sha256": doc.sha256})
            out = {**public(doc), "shown_by": me.name, "shown_by_id": me.pid, "private": inside}
        tickets = {p.pid: ticket(self.secret, _actor_of(live, p), f"read:{doc_id}") for p in recipients}
        return out, tickets


def _actor_of(live: LiveSession, p: Presence) -> Actor:
    return Actor(p.pid, p.role, session_id=live.session_id, staff_id=p.staff_id)


def court_documents(docs: list[CaseDocument]) -> list[CaseDocument]:
    """What goes to a court: never privileged caucus material (R9), never documents whose keys are destroyed."""
    return [d for d in docs if not d.privileged and d.keys_destroyed_at is None]


async def case_documents(s: AsyncSession, case_id: int) -> list[CaseDocument]:
    q = select(CaseDocument).where(CaseDocument.case_id == case_id).order_by(CaseDocument.uploaded_at)
    return list((await s.scalars(q)).all())

