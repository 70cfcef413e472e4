"""HTTP routes under /api (protocol.md lists them all). Permissions come from mediation.permissions."""

from __future__ import annotations

import base64
import datetime as dt
import io
from typing import Any, Literal

import qrcode
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from mediation import accounts, audit, cases, sessions
from mediation.db import utcnow
from mediation.errors import Conflict, Forbidden, NotFound
from mediation.models import Case, Center, Guest, Invite, MediationSession, Person, StageChange
from mediation.permissions import Action
from signaling.httpkit import COOKIE, Api, Ctx

api = Api()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginIn(Strict):
    username: str = Field(max_length=100)
    password: str = Field(max_length=200)


class PersonBody(Strict):
    side: Literal["A", "B"]
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["party", "agent"] = "party"
    id_number: str = Field("", max_length=40)
    phone: str = Field("", max_length=40)
    address: str = Field("", max_length=300)
    represents: int | None = Field(None, ge=0, lt=50)


class CaseIn(Strict):
    title: str = Field(max_length=300)
    category: str = Field(max_length=50)
    channel: str = Field(max_length=20)
    summary: str = Field("", max_length=5000)
    people: list[PersonBody] = Field(min_length=2, max_length=50)
    referring_court_id: str | None = Field(None, max_length=50)
    personal_status: bool = False


class StageIn(Strict):
    to: str = Field(max_length=20)
    note: str = Field("", max_length=2000)


class TerminateIn(Strict):
    reason: str = Field(max_length=40)
    note: str = Field("", max_length=5000)


class FlagIn(Strict):
    note: str = Field(min_length=1, max_length=2000)


class GuestIn(Strict):
    role: Literal["psychologist", "interpreter", "observer", "judge"]
    name: str = Field(min_length=1, max_length=200)


class SessionIn(Strict):
    scheduled_at: dt.datetime | None = None
    guests: list[GuestIn] = Field(default_factory=list, max_length=10)


class JoinIn(Strict):
    token: str = Field(min_length=16, max_length=100)


class UserIn(Strict):
    username: str = Field(max_length=100)
    password: str = Field(max_length=200)
    role: str = Field(max_length=30)
    display_name: str = Field(max_length=200)
    court_id: str | None = Field(None, max_length=50)


def base_url(ctx: Ctx) -> str:
    """Links use the configured public URL, else the address this request came in on."""
    configured = ctx.services.settings.base_url
    return (configured or f"{ctx.request.scheme}://{ctx.request.host}").rstrip("/")


def qr_data_url(text: str) -> str:
    buf = io.BytesIO()
    qrcode.make(text, box_size=6, border=2).save(buf)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


async def _case_for(s: Any, ctx: Ctx, code: str) -> Case:
    case = await cases.get_case(s, code)
    assert ctx.user is not None
    if case.center_id != ctx.user.center_id:
        raise NotFound(f"no case {code}", code="case_not_found")  # other centers' cases do not exist for you
    return case


@api.route("POST", "/api/auth/login", body=LoginIn, staff=False)
async def login(ctx: Ctx, body: LoginIn) -> web.Response:
    """Staff login: sets the session cookie, returns the CSRF token for later state-changing requests."""
    async with ctx.services.db.session() as s:
        user, token, row = await accounts.login(s, body.username, body.password)
    resp = web.json_response({"user": _user(user), "csrf": row.csrf_token})
    resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=ctx.services.settings.secure_cookies,
                    path="/", max_age=int(accounts.LOGIN_TTL.total_seconds()))
    return resp


def _user(u: Any) -> dict[str, Any]:
    return {"id": u.id, "username": u.username, "name": u.display_name, "role": u.role, "court_id": u.court_id}


@api.route("POST", "/api/auth/logout")
async def logout(ctx: Ctx, _: None) -> web.Response:
    """End the staff session."""
    async with ctx.services.db.session() as s:
        await accounts.logout(s, ctx.request.cookies[COOKIE])
    resp = web.json_response({"ok": True})
    resp.del_cookie(COOKIE, path="/")
    return resp


@api.route("GET", "/api/auth/me")
async def me(ctx: Ctx, _: None) -> dict[str, Any]:
    """Who is logged in, and the CSRF token of this login."""
    assert ctx.user and ctx.login
    return {"user": _user(ctx.user), "csrf": ctx.login.csrf_token}


@api.route("GET", "/api/cases", action=Action.CASE_LIST)
async def list_cases(ctx: Ctx, _: None) -> dict[str, Any]:
    """Cases of the user's center with stages and clocks."""
    assert ctx.user
    async with ctx.services.db.session() as s:
        rows = (await s.scalars(select(Case).where(Case.center_id == ctx.user.center_id).order_by(Case.id.desc())
                                .limit(500))).all()
        await audit.append(s, actor=ctx.actor, action="case.list", subject=f"center:{ctx.user.center_id}")
        return {"cases": [cases.case_to_dict(c) for c in rows]}


@api.route("GET", "/api/cases/overdue", action=Action.CASE_LIST)
async def overdue(ctx: Ctx, _: None) -> dict[str, Any]:
    """Cases with an overdue clock (R27, R30)."""
    assert ctx.user
    async with ctx.services.db.session() as s:
        late = await cases.overdue_cases(s, ctx.user.center_id)
        return {"cases": [{"code": c.code, "title": c.title, "overdue": [k.name for k in ks]} for c, ks in late]}


@api.route("POST", "/api/cases", action=Action.CASE_CREATE, body=CaseIn)
async def create_case(ctx: Ctx, body: CaseIn) -> dict[str, Any]:
    """Open a case (intake): sides, people, referral channel, category."""
    assert ctx.user
    async with ctx.services.db.session() as s:
        center = await s.get(Center, ctx.user.center_id)
        assert center
        case = await cases.create_case(
            s, center=center, title=body.title, category=body.category, channel=body.channel,
            people=[cases.PersonIn(**p.model_dump()) for p in body.people], actor=ctx.actor,
            created_by=ctx.user.id, summary=body.summary, referring_court_id=body.referring_court_id,
            personal_status=body.personal_status,
        )
        return {"case": cases.case_to_dict(case), "link": f"{base_url(ctx)}/c/{case.code}"}


@api.route("GET", "/api/cases/{code}", action=Action.CASE_READ)
async def read_case(ctx: Ctx, _: None) -> dict[str, Any]:
    """One case with its people, clocks, stage history and sessions. The read is logged (R10)."""
    async with ctx.services.db.session() as s:
        case = await _case_for(s, ctx, ctx.request.match_info["code"])
        history = (await s.scalars(select(StageChange).where(StageChange.case_id == case.id)
                                   .order_by(StageChange.id))).all()
        sess = (await s.scalars(select(MediationSession).where(MediationSession.case_id == case.id)
                                .order_by(MediationSession.id))).all()
        await audit.append(s, actor=ctx.actor, action="case.read", subject=f"case:{case.code}")
        return {"case": cases.case_to_dict(case),
                "history": [{"from": h.from_stage, "to": h.to_stage, "by": h.by, "at": h.at.isoformat(),
                             "note": h.note} for h in history],
                "sessions": [_session(x) for x in sess]}


def _session(x: MediationSession) -> dict[str, Any]:
    return {"id": x.id, "kind": x.kind, "state": x.state, "scheduled_at": x.scheduled_at.isoformat(),
            "host_id": x.host_id}


@api.route("GET", "/api/cases/{code}/qr.png", action=Action.CASE_READ)
async def case_qr(ctx: Ctx, _: None) -> web.Response:
    """QR code of the case's link (一案一码, R29)."""
    async with ctx.services.db.session() as s:
        case = await _case_for(s, ctx, ctx.request.match_info["code"])
    buf = io.BytesIO()
    qrcode.make(f"{base_url(ctx)}/c/{case.code}", box_size=8, border=2).save(buf)
    return web.Response(body=buf.getvalue(), content_type="image/png")


@api.route("POST", "/api/cases/{code}/stage", action=Action.CASE_STAGE, body=StageIn)
async def stage(ctx: Ctx, body: StageIn) -> dict[str, Any]:
    """Move the case to another stage; only the allowed transitions succeed."""
    async with ctx.services.db.session() as s:
        case = await _case_for(s, ctx, ctx.request.match_info["code"])
        await cases.move_stage(s, case, body.to, actor=ctx.actor, note=body.note)
        return {"case": cases.case_to_dict(case)}


@api.route("POST", "/api/cases/{code}/terminate", action=Action.CASE_TERMINATE, body=TerminateIn)
async def terminate(ctx: Ctx, body: TerminateIn) -> dict[str, Any]:
    """Record how the mediation ended, from the fixed list (R28)."""
    async with ctx.services.db.session() as s:
        case = await _case_for(s, ctx, ctx.request.match_info["code"])
        await cases.terminate(s, case, body.reason, actor=ctx.actor, note=body.note)
        return {"case": cases.case_to_dict(case)}


@api.route("POST", "/api/cases/{code}/flag", action=Action.CASE_FLAG, body=FlagIn)
async def flag(ctx: Ctx, body: FlagIn) -> dict[str, Any]:
    """Flag a dispute that may escalate to violence, for the police (R31)."""
    async with ctx.services.db.session() as s:
        case = await _case_for(s, ctx, ctx.request.match_info["code"])
        case.flagged_violence = True
        await audit.append(s, actor=ctx.actor, action="case.flag_violence", subject=f"case:{case.code}",
                           reason=body.note)
        return {"case": cases.case_to_dict(case)}


@api.route("POST", "/api/cases/{code}/sessions", action=Action.SESSION_CREATE, body=SessionIn)
async def schedule(ctx: Ctx, body: SessionIn) -> dict[str, Any]:
    """Schedule a session; returns each invite link (shown only now) with its QR code."""
    assert ctx.user
    async with ctx.services.db.session() as s:
        case = await _case_for(s, ctx, ctx.request.match_info["code"])
        kind = "questioning" if ctx.user.role == "court_judge" else "mediation"
        sess, issued = await sessions.schedule(
            s, case, host_id=ctx.user.id, at=body.scheduled_at or utcnow(), actor=ctx.actor, kind=kind,
            guests=[(g.role, g.name) for g in body.guests],
        )
        base = base_url(ctx)
        return {"session": _session(sess),
                "invites": [{"id": i.invite_id, "role": i.role, "name": i.name, "link": i.link(base),
                             "qr": qr_data_url(i.link(base))} for i in issued]}


@api.route("GET", "/api/sessions/{id}", action=Action.SESSION_READ)
async def read_session(ctx: Ctx, _: None) -> dict[str, Any]:
    """A session with its invites (never the tokens), binding, identity and consent status."""
    assert ctx.user
    async with ctx.services.db.session() as s:
        sess = await sessions.get_session(s, _int(ctx.request.match_info["id"]))
        case = await s.get(Case, sess.case_id)
        assert case
        if case.center_id != ctx.user.center_id:
            raise NotFound("no such session", code="session_not_found")
        invs = (await s.scalars(select(Invite).where(Invite.session_id == sess.id).order_by(Invite.id))).all()
        consents = await sessions.consents_of(s, [i.id for i in invs])
        out = []
        for i in invs:
            who = await s.get(Person, i.person_id) if i.person_id else await s.get(Guest, i.guest_id)
            out.append({"id": i.id, "participant": f"inv-{i.id}", "role": i.role, "name": who.name if who else "?",
                        "bound": i.device_key is not None, "expires_at": i.expires_at.isoformat(),
                        "consents": consents[i.id]})
        await audit.append(s, actor=ctx.actor, action="session.read", subject=f"session:{sess.id}")
        return {"session": _session(sess), "case": case.code, "invites": out}


@api.route("POST", "/api/sessions/{id}/invites/{invite}/reissue", action=Action.SESSION_CREATE)
async def reissue_invite(ctx: Ctx, _: None) -> dict[str, Any]:
    """A new link for a lost or forwarded one: the old link stops working; the next first use binds a device."""
    assert ctx.user
    async with ctx.services.db.session() as s:
        sess = await sessions.get_session(s, _int(ctx.request.match_info["id"]))
        case = await s.get(Case, sess.case_id)
        inv = await s.get(Invite, _int(ctx.request.match_info["invite"]))
        if case is None or case.center_id != ctx.user.center_id or inv is None or inv.session_id != sess.id:
            raise NotFound("no such invite", code="invite_not_found")
        if sess.state == sessions.SessionState.ENDED:
            raise Conflict("the session has ended", code="session_ended")
        token = await sessions.reissue(s, inv, actor=ctx.actor)
        who = await s.get(Person, inv.person_id) if inv.person_id else await s.get(Guest, inv.guest_id)
        link = sessions.IssuedInvite(inv.id, inv.role, who.name if who else "?", token).link(base_url(ctx))
    room = ctx.services.rooms.get(sess.id)
    p = room.people.get(f"inv-{inv.id}") if room else None
    if p is not None and p.sid is not None:  # whoever holds the old link is disconnected
        from signaling.app import NAMESPACE

        await ctx.request.app[NAMESPACE].disconnect(p.sid)
    return {"invite": {"id": inv.id, "role": inv.role, "link": link, "qr": qr_data_url(link)}}


def _int(v: str) -> int:
    if not v.isdigit() or len(v) > 12:
        raise NotFound("no such session", code="session_not_found")
    return int(v)


@api.route("POST", "/api/join", body=JoinIn, staff=False)
async def join(ctx: Ctx, body: JoinIn) -> dict[str, Any]:
    """First step of opening an invite link: who it is for, and a fresh challenge for the device proof."""
    async with ctx.services.db.session() as s:
        inv = await sessions.invite_by_token(s, body.token)
        sess = await s.get(MediationSession, inv.session_id)
        assert sess
        case = await s.get(Case, sess.case_id)
        assert case
        who = await s.get(Person, inv.person_id) if inv.person_id else await s.get(Guest, inv.guest_id)
        if sess.state == "ended":
            raise Forbidden("this session has ended", code="session_ended")
        return {
            "challenge": sessions.make_challenge(ctx.services.challenge_secret, inv.id),
            "bound": inv.device_key is not None,
            "participant": f"inv-{inv.id}", "role": inv.role, "name": who.name if who else "?",
            "person_id": inv.person_id,
            "case": {"code": case.code, "title": case.title}, "session": _session(sess),
            "notices_version": sessions.NOTICES_VERSION,
        }


@api.route("POST", "/api/users", action=Action.USER_CREATE, body=UserIn)
async def add_user(ctx: Ctx, body: UserIn) -> dict[str, Any]:
    """Create a staff account in the admin's center."""
    assert ctx.user
    async with ctx.services.db.session() as s:
        center = await s.get(Center, ctx.user.center_id)
        assert center
        u = await accounts.create_user(s, center, username=body.username, password=body.password, role=body.role,
                                       display_name=body.display_name, actor=ctx.actor, court_id=body.court_id)
        return {"user": _user(u)}


@api.route("GET", "/api/audit", action=Action.AUDIT_READ)
async def audit_entries(ctx: Ctx, _: None) -> dict[str, Any]:
    """Audit entries whose subject starts with ?subject= (reading the log is itself logged)."""
    subject = ctx.request.query.get("subject", "")[:200]
    async with ctx.services.db.session() as s:
        rows = await audit.entries_for(s, subject)
        await audit.append(s, actor=ctx.actor, action="audit.read", subject=f"audit:{subject}")
        return {"entries": [e.to_dict() for e in rows[-1000:]]}


@api.route("GET", "/api/audit/verify", action=Action.AUDIT_READ)
async def audit_verify(ctx: Ctx, _: None) -> dict[str, Any]:
    """Walk the whole hash chain and the signed checkpoints."""
    async with ctx.services.db.session() as s:
        rep = await audit.verify(s, ctx.services.keys.public_key)
        return {"ok": rep.ok, "entries": rep.entries, "checkpoints": rep.checkpoints, "problems": rep.problems}
