"""HTTP routes under /api (protocol.md lists them all): parse, call the use case (mediation.casework), answer."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import io
from typing import Any, Literal

import qrcode
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from mediation import accounts, cases, casework, tenancy
from mediation.casework import user_json
from mediation.errors import NotFound
from mediation.permissions import Action
from mediation.sessions import IssuedInvite
from signaling.httpkit import COOKIE, Api, Ctx
from signaling.publish import Publisher

api = Api()
PUBLISHER = web.AppKey("publisher", Publisher)


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
    personal_status: bool = False  # the same as personal_matter "status"
    personal_matter: Literal["none", "status", "inheritance"] = "none"


class PersonPatch(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    id_number: str | None = Field(None, max_length=40)
    phone: str | None = Field(None, max_length=40)
    address: str | None = Field(None, max_length=300)
    reason: str = Field("", max_length=2000)


class ContactIn(Strict):
    phone: str = Field(max_length=40)
    hours: str = Field("", max_length=200)


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
    center_id: int | None = Field(None, ge=1, le=2**31 - 1)  # another center's: the system administrator only


class CourtIn(Strict):
    """A court's directory entry (the same fields and checks as the directory file: mediation.agreements.courts)."""

    id: str = Field(max_length=50)
    name: str = Field(max_length=200)
    level: str = Field(max_length=20)
    region: str = Field(max_length=100)
    address: str = Field("", max_length=300)
    ruling_public_key: str = Field(max_length=100)
    recording_public_key: str = Field(max_length=100)


class CenterIn(Strict):
    code: str = Field(max_length=20)
    name: str = Field(max_length=200)
    address: str = Field("", max_length=300)
    level: str = Field(max_length=20)
    parent_id: int | None = Field(None, ge=1, le=2**31 - 1)


def base_url(ctx: Ctx) -> str:
    """Links use the configured public URL, else the address this request came in on."""
    configured = ctx.services.settings.base_url
    return (configured or f"{ctx.request.scheme}://{ctx.request.host}").rstrip("/")


def qr_data_url(text: str) -> str:
    buf = io.BytesIO()
    qrcode.make(text, box_size=6, border=2).save(buf)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


async def invite_json(ctx: Ctx, i: IssuedInvite) -> dict[str, Any]:
    """The invite as the console shows it; its QR image is drawn in a worker thread (~50-110 ms of CPU per PNG,
    which blocked the event loop, and every room's media with it, when drawn inline)."""
    link = i.link(base_url(ctx))
    qr = await asyncio.to_thread(qr_data_url, link)
    return {"id": i.invite_id, "role": i.role, "name": i.name, "link": link, "qr": qr}


def int_param(v: str, what: str = "session") -> int:
    """Path ids are ASCII digits (Unicode digits such as '²' are not ids)."""
    if not (v.isascii() and v.isdigit()) or len(v) > 12:
        raise NotFound(f"no such {what}", code=f"{what}_not_found")
    return int(v)


@api.route("POST", "/api/auth/login", body=LoginIn, staff=False)
async def login(ctx: Ctx, body: LoginIn) -> web.Response:
    """Staff login: sets the session cookie, returns the CSRF token for later state-changing requests."""
    user, token, row = await accounts.login(ctx.services.db, ctx.services.login_throttle, body.username,
                                            body.password, address=ctx.request.remote or "")
    resp = web.json_response({"user": user_json(user), "csrf": row.csrf_token})
    resp.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=ctx.services.settings.secure_cookies,
                    path="/", max_age=int(accounts.LOGIN_TTL.total_seconds()))
    return resp


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
    assert ctx.login
    async with ctx.services.db.session() as s:
        user = await accounts.user(s, ctx.actor.staff_id or 0)
    return {"user": user_json(user), "csrf": ctx.login.csrf_token}


@api.route("GET", "/api/cases", action=Action.CASE_LIST)
async def list_cases(ctx: Ctx, _: None) -> dict[str, Any]:
    """Cases of the user's center with stages and clocks."""
    return {"cases": await casework.list_cases(ctx.services.db, ctx.actor)}


@api.route("GET", "/api/cases/overdue", action=Action.CASE_LIST)
async def overdue(ctx: Ctx, _: None) -> dict[str, Any]:
    """Cases with an overdue clock (R27, R30)."""
    return {"cases": await casework.overdue(ctx.services.db, ctx.actor)}


@api.route("GET", "/api/courts", action=Action.CASE_CREATE)
async def list_courts(ctx: Ctx, _: None) -> dict[str, Any]:
    """The court directory (id, name, level, region): the intake form's referring-court picker."""
    return {"courts": await tenancy.list_courts(ctx.services.db, ctx.services.courts)}


@api.route("POST", "/api/courts", action=Action.COURT_CREATE, body=CourtIn)
async def create_court(ctx: Ctx, body: CourtIn) -> dict[str, Any]:
    """Add a court with its public keys (the system administrator; 409 court_exists, 422 invalid_court)."""
    return {"court": await tenancy.create_court(ctx.services.db, ctx.actor, ctx.services.courts, body.model_dump())}


@api.route("GET", "/api/centers", action=Action.CENTER_LIST)
async def list_centers(ctx: Ctx, _: None) -> dict[str, Any]:
    """Every center with its level and parent (the system administrator)."""
    return {"centers": await tenancy.list_centers(ctx.services.db, ctx.actor)}


@api.route("POST", "/api/centers", action=Action.CENTER_CREATE, body=CenterIn)
async def create_center(ctx: Ctx, body: CenterIn) -> dict[str, Any]:
    """Add a center under a parent of a higher level (the system administrator; 409 center_exists)."""
    return {"center": await tenancy.create_center(ctx.services.db, ctx.actor, **body.model_dump())}


@api.route("POST", "/api/cases", action=Action.CASE_CREATE, body=CaseIn)
async def create_case(ctx: Ctx, body: CaseIn) -> dict[str, Any]:
    """Open a case (intake): sides, people, referral channel, category."""
    case = await casework.create_case(
        ctx.services.db, ctx.actor, ctx.services.courts, title=body.title, category=body.category,
        channel=body.channel, people=[cases.PersonIn(**p.model_dump()) for p in body.people], summary=body.summary,
        referring_court_id=body.referring_court_id or None, personal_status=body.personal_status,
        personal_matter=body.personal_matter)
    return {"case": case, "link": f"{base_url(ctx)}/c/{case['code']}"}


@api.route("GET", "/api/cases/{code}", action=Action.CASE_READ)
async def read_case(ctx: Ctx, _: None) -> dict[str, Any]:
    """One case with its people, clocks, stage history and sessions. The read is logged (R10)."""
    return await casework.read_case(ctx.services.db, ctx.actor, ctx.param("code"))


@api.route("PATCH", "/api/cases/{code}/people/{id}", action=Action.PERSON_EDIT, body=PersonPatch)
async def correct_person(ctx: Ctx, body: PersonPatch) -> dict[str, Any]:
    """Correct a person's name, ID number (GB 11643 checksum), phone or address; each change is audited."""
    changes = body.model_dump(exclude_none=True, exclude={"reason"})
    return {"person": await casework.correct_person(ctx.services.db, ctx.actor, ctx.param("code"),
                                                    int_param(ctx.param("id"), "person"), changes, body.reason)}


@api.route("PUT", "/api/center/contact", action=Action.CENTER_CONTACT, body=ContactIn)
async def center_contact(ctx: Ctx, body: ContactIn) -> dict[str, Any]:
    """The center's public phone and hours, shown on the page a case QR code opens (/c/<code>)."""
    return {"contact": await casework.set_center_contact(ctx.services.db, ctx.actor, body.phone, body.hours)}


@api.route("GET", "/api/cases/{code}/qr.png", action=Action.CASE_READ)
async def case_qr(ctx: Ctx, _: None) -> web.Response:
    """QR code of the case's link (一案一码, R29)."""
    code = await casework.case_code(ctx.services.db, ctx.actor, ctx.param("code"), Action.CASE_READ)
    buf = io.BytesIO()
    qrcode.make(f"{base_url(ctx)}/c/{code}", box_size=8, border=2).save(buf)
    return web.Response(body=buf.getvalue(), content_type="image/png")


@api.route("POST", "/api/cases/{code}/stage", action=Action.CASE_STAGE, body=StageIn)
async def stage(ctx: Ctx, body: StageIn) -> dict[str, Any]:
    """Move the case to another stage; only the allowed transitions succeed."""
    return {"case": await casework.move_stage(ctx.services.db, ctx.actor, ctx.param("code"), body.to, body.note)}


@api.route("POST", "/api/cases/{code}/terminate", action=Action.CASE_TERMINATE, body=TerminateIn)
async def terminate(ctx: Ctx, body: TerminateIn) -> dict[str, Any]:
    """Record how the mediation ended, from the fixed list (R28)."""
    return {"case": await casework.terminate(ctx.services.db, ctx.actor, ctx.param("code"), body.reason,
                                             body.note)}


@api.route("POST", "/api/cases/{code}/flag", action=Action.CASE_FLAG, body=FlagIn)
async def flag(ctx: Ctx, body: FlagIn) -> dict[str, Any]:
    """Flag a dispute that may escalate to violence, for the police (R31)."""
    return {"case": await casework.flag_violence(ctx.services.db, ctx.actor, ctx.param("code"), body.note)}


@api.route("POST", "/api/cases/{code}/sessions", action=Action.SESSION_CREATE, body=SessionIn)
async def schedule(ctx: Ctx, body: SessionIn) -> dict[str, Any]:
    """Schedule a session; returns each invite link (shown only now) with its QR code."""
    out = await casework.schedule(ctx.services.db, ctx.actor, ctx.param("code"), body.scheduled_at,
                                  [(g.role, g.name) for g in body.guests])
    return {"session": out.session, "invites": [await invite_json(ctx, i) for i in out.invites]}


@api.route("GET", "/api/sessions/{id}", action=Action.SESSION_READ)
async def read_session(ctx: Ctx, _: None) -> dict[str, Any]:
    """A session with its invites (never the tokens), binding, identity and consent status."""
    return await casework.read_session(ctx.services.db, ctx.actor, int_param(ctx.param("id")))


@api.route("POST", "/api/sessions/{id}/invites/{invite}/reissue", action=Action.INVITE_REISSUE)
async def reissue_invite(ctx: Ctx, _: None) -> dict[str, Any]:
    """A new link for a lost or forwarded one (only the host or an admin of the center): the old link stops
    working; the next first use binds a device; the person starts over in the lobby (identity, admission)."""
    session_id = int_param(ctx.param("id"))
    issued = await casework.reissue(ctx.services.db, ctx.actor, session_id, int_param(ctx.param("invite"), "invite"))
    await ctx.request.app[PUBLISHER].reissued(session_id, f"inv-{issued.invite_id}")
    out = await invite_json(ctx, issued)
    out.pop("name")
    return {"invite": out}


@api.route("POST", "/api/join", body=JoinIn, staff=False)
async def join(ctx: Ctx, body: JoinIn) -> dict[str, Any]:
    """First step of opening an invite link: who it is for, and a fresh challenge for the device proof; with
    several nodes, also which node serves the session (`node`: the client connects its Socket.IO there)."""
    out = await casework.join_info(ctx.services.db, body.token, ctx.services.challenge_secret)
    cluster = ctx.services.cluster
    if cluster is not None:
        out["node"] = cluster.address(await cluster.where(int(out["session"]["id"])))
    return out


@api.route("POST", "/api/users", action=Action.USER_CREATE, body=UserIn)
async def add_user(ctx: Ctx, body: UserIn) -> dict[str, Any]:
    """Create a staff account in the admin's center (judges, and staff of another center: only the system
    administrator)."""
    return {"user": await casework.add_user(ctx.services.db, ctx.actor, ctx.services.courts,
                                            username=body.username, password=body.password, role=body.role,
                                            display_name=body.display_name, court_id=body.court_id,
                                            center_id=body.center_id)}


@api.route("GET", "/api/audit", action=Action.AUDIT_READ)
async def audit_entries(ctx: Ctx, _: None) -> dict[str, Any]:
    """Audit entries of the admin's center whose subject starts with ?subject= (the read is logged)."""
    subject = ctx.request.query.get("subject", "")[:200]
    return {"entries": await casework.audit_entries(ctx.services.db, ctx.actor, subject)}


@api.route("GET", "/api/audit/verify", action=Action.AUDIT_READ)
async def audit_verify(ctx: Ctx, _: None) -> dict[str, Any]:
    """Walk the whole hash chain and the signed checkpoints."""
    return await casework.audit_verify(ctx.services.db, ctx.services.keys)
