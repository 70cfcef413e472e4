"""The console's case work as use cases: cases, sessions and invites, staff accounts, the audit log.

Every function takes the database (its own unit of work) and the acting staff member, checks role AND object
through mediation.access, and returns plain data. The HTTP routes (signaling/http_api.py) only parse and call.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import accounts, audit, cases, sessions
from mediation.access import Actor, Resource, check
from mediation.agreements.courts import CourtDirectory
from mediation.case_records import CenterContact
from mediation.db import Database, utcnow
from mediation.errors import Conflict, Forbidden, InvalidInput, NotFound
from mediation.keyring import KeyRing
from mediation.models import Case, Center, Guest, Invite, MediationSession, Person, StaffUser, StageChange
from mediation.permissions import Action, StaffRole
from mediation.recording_records import Recording
from mediation.resources import case_by_code, case_resource, session_and_case, session_resource


def session_json(x: MediationSession) -> dict[str, Any]:
    return {"id": x.id, "kind": x.kind, "state": x.state, "scheduled_at": x.scheduled_at.isoformat(),
            "host_id": x.host_id}


def user_json(u: StaffUser) -> dict[str, Any]:
    return {"id": u.id, "username": u.username, "name": u.display_name, "role": u.role, "court_id": u.court_id}


async def own_case(s: AsyncSession, actor: Actor, code: str, action: Action) -> Case:
    """A case this actor may act on (other centers' cases do not exist for them)."""
    case = await case_by_code(s, code)
    check(actor, action, await case_resource(s, case))
    return case


# ---- cases ------------------------------------------------------------------------------------------------------

async def list_cases(db: Database, actor: Actor) -> list[dict[str, Any]]:
    async with db.session() as s:
        rows = (await s.scalars(select(Case).where(Case.center_id == actor.center_id).order_by(Case.id.desc())
                                .limit(500))).all()
        await audit.append(s, actor=actor.id, action="case.list", subject=f"center:{actor.center_id}")
        return [cases.case_to_dict(c) for c in rows]


async def overdue(db: Database, actor: Actor) -> list[dict[str, Any]]:
    async with db.session() as s:
        late = await cases.overdue_cases(s, actor.center_id or 0)
        return [{"code": c.code, "title": c.title, "overdue": [k.name for k in ks]} for c, ks in late]


async def create_case(db: Database, actor: Actor, courts: CourtDirectory, *, people: list[cases.PersonIn],
                      personal_matter: str = "none", referring_court_id: str | None = None,
                      **fields: Any) -> dict[str, Any]:
    """Intake: ID numbers checked (GB 11643), the personal matter (a status matter is not confirmable, CPL-I 355;
    inheritance is), and the referring court, which a court-referred (诉调) case must name and which then is the
    court its agreement goes back to (R22)."""
    try:
        matter = cases.PersonalMatter(personal_matter)
    except ValueError:
        raise InvalidInput("personal_matter is none, status or inheritance", code="bad_personal_matter") from None
    if fields.pop("personal_status", False):
        matter = cases.PersonalMatter.STATUS
    if not referring_court_id and fields.get("channel") == cases.Channel.COURT.value:
        raise InvalidInput("诉调案件须填写委派法院 / a court-referred case names the referring court",
                           code="court_required")
    async with db.session() as s:
        if referring_court_id:
            await courts.lookup(s, referring_court_id)  # 404 no_court: not in the courts table
        center = await s.get(Center, actor.center_id)
        if center is None:
            raise Forbidden("only staff of a center open cases", code="forbidden")
        case = await cases.create_case(s, center=center, people=people, actor=actor.id, created_by=actor.staff_id,
                                       referring_court_id=referring_court_id,
                                       personal_status=matter is cases.PersonalMatter.STATUS, **fields)
        await cases.set_personal_matter(s, case, matter, actor=actor.id)
        return {**cases.case_to_dict(case), "personal_matter": matter.value}


async def read_case(db: Database, actor: Actor, code: str) -> dict[str, Any]:
    """One case with its people, clocks, stage history and sessions. The read is logged (R10)."""
    async with db.session() as s:
        case = await own_case(s, actor, code, Action.CASE_READ)
        history = (await s.scalars(select(StageChange).where(StageChange.case_id == case.id)
                                   .order_by(StageChange.id))).all()
        sess = (await s.scalars(select(MediationSession).where(MediationSession.case_id == case.id)
                                .order_by(MediationSession.id))).all()
        await audit.append(s, actor=actor.id, action="case.read", subject=f"case:{case.code}")
        people = [cases.person_to_dict(p) for p in case.people]
        return {"case": {**cases.case_to_dict(case), "people": people,
                         "personal_matter": await cases.personal_matter(s, case)},
                "history": [{"from": h.from_stage, "to": h.to_stage, "by": h.by, "at": h.at.isoformat(),
                             "note": h.note} for h in history],
                "sessions": [session_json(x) for x in sess]}


async def case_code(db: Database, actor: Actor, code: str, action: Action) -> str:
    async with db.session() as s:
        return (await own_case(s, actor, code, action)).code


async def move_stage(db: Database, actor: Actor, code: str, to: str, note: str) -> dict[str, Any]:
    async with db.session() as s:
        case = await own_case(s, actor, code, Action.CASE_STAGE)
        await cases.move_stage(s, case, to, actor=actor.id, note=note)
        return cases.case_to_dict(case)


async def terminate(db: Database, actor: Actor, code: str, reason: str, note: str) -> dict[str, Any]:
    async with db.session() as s:
        case = await own_case(s, actor, code, Action.CASE_TERMINATE)
        await cases.terminate(s, case, reason, actor=actor.id, note=note)
        return cases.case_to_dict(case)


async def flag_violence(db: Database, actor: Actor, code: str, note: str) -> dict[str, Any]:
    """Flag a dispute that may escalate to violence, for the police (R31)."""
    async with db.session() as s:
        case = await own_case(s, actor, code, Action.CASE_FLAG)
        case.flagged_violence = True
        await audit.append(s, actor=actor.id, action="case.flag_violence", subject=f"case:{case.code}", reason=note)
        return cases.case_to_dict(case)


async def correct_person(db: Database, actor: Actor, code: str, person_id: int, changes: dict[str, str],
                         reason: str) -> dict[str, Any]:
    """Staff of the case's center correct a person (GB 11643 checksum on ID numbers); each change is audited.
    The agreement's parties are read from these records, so a draft saved afterwards carries the correction."""
    async with db.session() as s:
        case = await own_case(s, actor, code, Action.PERSON_EDIT)
        person = await cases.correct_person(s, case, person_id, changes, actor=actor.id, reason=reason)
        return cases.person_to_dict(person)


async def set_center_contact(db: Database, actor: Actor, phone: str, hours: str) -> dict[str, Any]:
    """The center's public phone and hours, shown on the page a case QR code opens (an admin of the center)."""
    async with db.session() as s:
        center = await s.get(Center, actor.center_id)
        if center is None:
            raise Forbidden("only an administrator of a center", code="forbidden")
        row = await s.get(CenterContact, center.id)
        if row is None:
            row = CenterContact(center_id=center.id, updated_by=actor.id)
            s.add(row)
        row.phone, row.hours, row.updated_by, row.updated_at = cases.normalize_phone(phone), hours.strip(), actor.id, utcnow()
        await s.flush()
        await audit.append(s, actor=actor.id, action="center.contact", subject=f"center:{center.id}",
                           detail={"phone": row.phone, "hours": row.hours})
        return {"center": center.name, "phone": row.phone, "hours": row.hours}


# ---- sessions and invites -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Scheduled:
    session: dict[str, Any]
    invites: list[sessions.IssuedInvite]


async def schedule(db: Database, actor: Actor, code: str, at: dt.datetime | None,
                   guests: list[tuple[str, str]]) -> Scheduled:
    """A mediation session (a mediator of the case's center), or a judge's questioning (court_api)."""
    async with db.session() as s:
        case = await case_by_code(s, code)
        check(actor, Action.SESSION_CREATE, await case_resource(s, case))
        kind = "questioning" if actor.role == StaffRole.COURT_JUDGE else "mediation"
        sess, issued = await sessions.schedule(s, case, host_id=actor.staff_id or 0, at=at or utcnow(),
                                               actor=actor.id, kind=kind, guests=guests)
        return Scheduled(session_json(sess), list(issued))


async def read_session(db: Database, actor: Actor, session_id: int) -> dict[str, Any]:
    """A session with its invites (never the tokens), binding, identity and consent status."""
    async with db.session() as s:
        sess, case = await session_and_case(s, session_id)
        check(actor, Action.SESSION_READ, await session_resource(s, sess, case))
        invs = (await s.scalars(select(Invite).where(Invite.session_id == sess.id).order_by(Invite.id))).all()
        consents = await sessions.consents_of(s, [i.id for i in invs])
        out = []
        for i in invs:
            who = await s.get(Person, i.person_id) if i.person_id else await s.get(Guest, i.guest_id)
            out.append({"id": i.id, "participant": f"inv-{i.id}", "role": i.role, "name": who.name if who else "?",
                        "bound": i.device_key is not None, "expires_at": i.expires_at.isoformat(),
                        "consents": consents[i.id]})
        await audit.append(s, actor=actor.id, action="session.read", subject=f"session:{sess.id}")
        return {"session": session_json(sess), "case": case.code, "invites": out}


async def reissue(db: Database, actor: Actor, session_id: int, invite_id: int) -> sessions.IssuedInvite:
    """A new link for a lost or forwarded one: only the host (or an admin of the center). The old link stops
    working, the device binding is reset, and the person starts over: identity check and admission again."""
    async with db.session() as s:
        sess, case = await session_and_case(s, session_id)
        inv = await s.get(Invite, invite_id)
        r = await session_resource(s, sess, case)
        if inv is None or inv.session_id != sess.id:
            r = Resource("invite")  # no such invite in this session: the same answer as for another center's
        try:
            check(actor, Action.INVITE_REISSUE, Resource("invite", center_id=r.center_id, host_id=r.host_id,
                                                         session_id=r.session_id))
        except NotFound:
            raise NotFound("no such invite", code="invite_not_found") from None
        assert inv is not None
        if sess.state == sessions.SessionState.ENDED:
            raise Conflict("the session has ended", code="session_ended")
        token = await sessions.reissue(s, inv, actor=actor.id)
        who = await s.get(Person, inv.person_id) if inv.person_id else await s.get(Guest, inv.guest_id)
        return sessions.IssuedInvite(inv.id, inv.role, who.name if who else "?", token)


async def join_info(db: Database, token: str, secret: bytes) -> dict[str, Any]:
    """First step of opening an invite link: who it is for, and a fresh challenge for the device proof."""
    async with db.session() as s:
        inv = await sessions.invite_by_token(s, token)
        sess, case = await session_and_case(s, inv.session_id)
        who = await s.get(Person, inv.person_id) if inv.person_id else await s.get(Guest, inv.guest_id)
        if sess.state == "ended":
            raise Forbidden("this session has ended", code="session_ended")
        return {
            "challenge": sessions.make_challenge(secret, inv.id),
            "bound": inv.device_key is not None,
            "participant": f"inv-{inv.id}", "role": inv.role, "name": who.name if who else "?",
            "person_id": inv.person_id,
            "case": {"code": case.code, "title": case.title}, "session": session_json(sess),
            "notices_version": sessions.NOTICES_VERSION,
        }


# ---- staff and the audit log ------------------------------------------------------------------------------------

async def add_user(db: Database, actor: Actor, courts: CourtDirectory, *, username: str, password: str, role: str,
                   display_name: str, court_id: str | None, center_id: int | None = None) -> dict[str, Any]:
    """A center admin creates staff of its own center (another `center_id` is 403 `other_center`); only the system
    administrator creates judges (of a court in the courts table: `staff_users.court_id` has no foreign key, this
    is the check), other system administrators, and staff of any center (issue 10)."""
    system = actor.role == StaffRole.SYSTEM_ADMIN
    if role in (StaffRole.COURT_JUDGE, StaffRole.SYSTEM_ADMIN) and not system:
        raise Forbidden("only the system administrator creates judges and administrators", code="forbidden")
    if center_id is not None and center_id != actor.center_id and not system:
        raise Forbidden("一个中心的管理员只管理本中心人员 / an admin manages only its own center's staff",
                        code="other_center")
    if role != StaffRole.COURT_JUDGE and court_id:
        raise InvalidInput("only judges belong to a court", code="bad_court")
    if role == StaffRole.COURT_JUDGE and not court_id:
        raise InvalidInput("a judge belongs to a court", code="court_required")
    async with db.session() as s:
        if court_id:
            await courts.lookup(s, court_id)  # 404 no_court for a court not in the table
        center = await s.get(Center, center_id if center_id is not None else actor.center_id)
        if center is None:
            raise NotFound("no such center", code="center_not_found")
        u = await accounts.create_user(s, center, username=username, password=password, role=role,
                                       display_name=display_name, actor=actor.id, court_id=court_id)
        return user_json(u)


@dataclass(frozen=True)
class _CenterSubjects:
    """The audit subjects that belong to one center: its cases (and what hangs under them), sessions, invites,
    recordings, staff accounts and the center itself."""

    center_id: int
    ids: dict[str, frozenset[str]]

    def __contains__(self, subject: str) -> bool:
        kind, _, rest = subject.partition(":")
        if kind == "center":
            return rest == str(self.center_id)
        return rest.split("/")[0] in self.ids.get(kind, frozenset())


async def _center_subjects(s: AsyncSession, center_id: int) -> _CenterSubjects:
    codes = frozenset((await s.scalars(select(Case.code).where(Case.center_id == center_id))).all())
    sessions_q = select(MediationSession.id).join(Case, Case.id == MediationSession.case_id).where(
        Case.center_id == center_id)
    sids = frozenset(str(x) for x in (await s.scalars(sessions_q)).all())
    invites = frozenset(str(x) for x in (await s.scalars(
        select(Invite.id).where(Invite.session_id.in_(sessions_q)))).all())
    recs = frozenset((await s.scalars(select(Recording.id).where(Recording.case_code.in_(codes)))).all())
    users = frozenset((await s.scalars(select(StaffUser.username).where(StaffUser.center_id == center_id))).all())
    return _CenterSubjects(center_id, {"case": codes, "session": sids, "invite": invites, "recording": recs,
                                       "user": users})


async def audit_entries(db: Database, actor: Actor, subject: str) -> list[dict[str, Any]]:
    """Audit entries whose subject starts with `subject`, limited to the admin's own center (its cases, sessions
    and the center itself); reading the log is itself logged."""
    async with db.session() as s:
        ours = await _center_subjects(s, actor.center_id or 0)
        rows = [e for e in await audit.entries_for(s, subject) if e.subject in ours]
        await audit.append(s, actor=actor.id, action="audit.read", subject=f"audit:{subject}")
        return [e.to_dict() for e in rows[-1000:]]


async def audit_verify(db: Database, keys: KeyRing) -> dict[str, Any]:
    """Walk the whole hash chain and the signed checkpoints."""
    async with db.session() as s:
        rep = await audit.verify(s, keys.public_key)
        return {"ok": rep.ok, "entries": rep.entries, "checkpoints": rep.checkpoints, "problems": rep.problems}
