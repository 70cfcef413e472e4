"""Agreement events inside a session (R15-R17, R21): live drafting by the mediator, signing by each party with
the device key bound to its own invite, refusal (R28), and the joint application for judicial confirmation.

Every change is followed by an `agreement:state` push to every admitted participant (agreement_common).
"""

from __future__ import annotations

import base64
import logging
from typing import Any

from pydantic import Field

from mediation import audit
from mediation.agreements import agreement as agreements
from mediation.agreements import confirmation, signing
from mediation.errors import Forbidden, NotFound
from mediation.models import Case, Invite, MediationSession
from mediation.permissions import Action
from signaling.agreement_common import (
    agreement_json,
    case_state,
    latest_application,
    live_agreement_id,
    notifications,
    notify_parties,
    push_agreement,
    wrap_for_court,
)
from signaling.sockets import Ctx, Empty, Payload, on

log = logging.getLogger(__name__)


class DraftIn(Payload):
    template: str = Field(min_length=1, max_length=40)


class UpdateIn(Payload):
    content: dict[str, Any]
    base_version: int = Field(ge=1)
    note: str = Field("", max_length=500)


class SignIn(Payload):
    signature: str = Field(min_length=1, max_length=200)  # base64 of the 64-byte raw r||s


class RefuseIn(Payload):
    note: str = Field("", max_length=2000)


async def _case(s: Any, ctx: Ctx, *, mediation_only: bool = False) -> Case:
    sess = await s.get(MediationSession, ctx.room.session_id)
    case = await s.get(Case, sess.case_id) if sess else None
    if sess is None or case is None:
        raise NotFound("no such session", code="session_not_found")
    if mediation_only and sess.kind != "mediation":
        raise Forbidden("协议只能在调解会话中起草和签署 / agreements are drafted in a mediation session",
                        code="not_mediation_session")
    return case


async def _person_id(s: Any, ctx: Ctx) -> int:
    """The person this connection's invite is for (parties and agents always join by invite)."""
    inv = await s.get(Invite, ctx.me.invite_id) if ctx.me.invite_id else None
    if inv is None or inv.person_id is None:
        raise Forbidden("您不是本案当事人或代理人 / not a party or agent of this case", code="not_a_party")
    return int(inv.person_id)


def _author(ctx: Ctx) -> str:
    return ctx.me.pid


@on("agreement:get", Action.AGREEMENT_READ, Empty, admitted=True)
async def get(ctx: Ctx, _: Empty) -> dict[str, Any]:
    """The agreement, the application and the notices sent to the parties (the read is logged)."""
    async with ctx.services.db.session() as s:
        case = await _case(s, ctx)
        await audit.append(s, actor=ctx.me.pid, action="agreement.view", subject=f"case:{case.code}",
                           detail={"session": ctx.room.session_id})
        return {**await case_state(s, case), "notifications": await notifications(s, case.code)}


@on("agreement:draft", Action.AGREEMENT_DRAFT, DraftIn, admitted=True)
async def draft(ctx: Ctx, body: DraftIn) -> dict[str, Any]:
    async with ctx.services.db.session() as s:
        case = await _case(s, ctx, mediation_only=True)
        view = await agreements.create_draft(s, case.id, template=body.template, author=_author(ctx),
                                             mediator_id=ctx.me.staff_id)
        out = await agreement_json(s, view)
    await push_agreement(ctx.services, ctx.sio, ctx.room.case_code)
    return {"agreement": out}


@on("agreement:update", Action.AGREEMENT_DRAFT, UpdateIn, admitted=True)
async def update(ctx: Ctx, body: UpdateIn) -> dict[str, Any]:
    async with ctx.services.db.session() as s:
        case = await _case(s, ctx, mediation_only=True)
        view = await agreements.update_draft(s, await live_agreement_id(s, case.id), body.content,
                                             author=_author(ctx), note=body.note, base_version=body.base_version)
        out = await agreement_json(s, view)
    await push_agreement(ctx.services, ctx.sio, ctx.room.case_code)
    return {"agreement": out}


@on("agreement:finalize", Action.AGREEMENT_DRAFT, Empty, admitted=True)
async def finalize(ctx: Ctx, _: Empty) -> dict[str, Any]:
    async with ctx.services.db.session() as s:
        case = await _case(s, ctx, mediation_only=True)
        view = await agreements.finalize(s, await live_agreement_id(s, case.id), author=_author(ctx),
                                         notary=ctx.services.notary)
        out = await agreement_json(s, view)
    await push_agreement(ctx.services, ctx.sio, ctx.room.case_code)
    return {"agreement": out}


@on("agreement:payload", Action.AGREEMENT_SIGN_PARTY, Empty, admitted=True)
async def payload(ctx: Ctx, _: Empty) -> dict[str, Any]:
    """The exact bytes to sign (base64) — the browser signs them with its bound device key."""
    async with ctx.services.db.session() as s:
        case = await _case(s, ctx)
        a_id = await live_agreement_id(s, case.id)
        data = await signing.signing_payload(s, a_id, person_id=await _person_id(s, ctx))
        view = await agreements.get_agreement(s, a_id)
    return {"agreement_id": a_id, "version": view.final_version, "pdf_sha256": view.pdf_sha256,
            "content_sha256": view.content_sha256, "payload": base64.b64encode(data).decode()}


@on("agreement:sign", Action.AGREEMENT_SIGN_PARTY, SignIn, admitted=True)
async def sign(ctx: Ctx, body: SignIn) -> dict[str, Any]:
    async with ctx.services.db.session() as s:
        case = await _case(s, ctx)
        out = await signing.sign_as_party(s, await live_agreement_id(s, case.id), person_id=await _person_id(s, ctx),
                                          invite_id=int(ctx.me.invite_id or 0), signature_b64=body.signature,
                                          notary=ctx.services.notary)
    await push_agreement(ctx.services, ctx.sio, ctx.room.case_code)
    return {"effective": out.effective, "sealed": out.sealed, "status": out.agreement.status,
            "key_fingerprint": out.signature.key_fingerprint}


@on("agreement:sign-mediator", Action.AGREEMENT_SIGN_MEDIATOR, Empty, admitted=True)
async def sign_mediator(ctx: Ctx, _: Empty) -> dict[str, Any]:
    if ctx.me.staff_id is None:
        raise Forbidden("only the case's mediator signs here", code="not_the_mediator")
    async with ctx.services.db.session() as s:
        case = await _case(s, ctx, mediation_only=True)
        out = await signing.sign_as_mediator(s, await live_agreement_id(s, case.id), staff_id=ctx.me.staff_id,
                                             notary=ctx.services.notary)
    await push_agreement(ctx.services, ctx.sio, ctx.room.case_code)
    return {"effective": out.effective, "sealed": out.sealed, "status": out.agreement.status}


@on("agreement:refuse", Action.AGREEMENT_SIGN_PARTY, RefuseIn, admitted=True)
async def refuse(ctx: Ctx, body: RefuseIn) -> dict[str, Any]:
    """A party refuses to sign: the agreement is refused and the mediation ends (R16, R28)."""
    async with ctx.services.db.session() as s:
        case = await _case(s, ctx)
        view = await signing.refuse_to_sign(s, await live_agreement_id(s, case.id),
                                            person_id=await _person_id(s, ctx), note=body.note, actor=ctx.me.pid)
        reason = case.termination_reason
    await push_agreement(ctx.services, ctx.sio, ctx.room.case_code)
    return {"status": view.status, "termination_reason": reason}


async def _draft_application(s: Any, ctx: Ctx) -> tuple[Case, int]:
    case = await _case(s, ctx)
    view = await agreements.agreement_for_case(s, case.id)
    app = await latest_application(s, view.id) if view else None
    if app is None:
        raise NotFound("尚未发起司法确认申请 / no application has been prepared", code="no_application")
    return case, app.id


@on("application:payload", Action.APPLICATION_SIGN, Empty, admitted=True)
async def application_payload(ctx: Ctx, _: Empty) -> dict[str, Any]:
    """The application document and the exact bytes this party signs for it (base64)."""
    async with ctx.services.db.session() as s:
        _case_row, app_id = await _draft_application(s, ctx)
        data = await confirmation.application_payload(s, app_id, person_id=await _person_id(s, ctx))
        view = await confirmation.get_application(s, app_id)
    return {"application_id": app_id, "status": view.status, "document": view.document,
            "deadline_at": view.deadline_at.isoformat(), "court": view.document["court"],
            "payload": base64.b64encode(data).decode()}


@on("application:sign", Action.APPLICATION_SIGN, SignIn, admitted=True)
async def application_sign(ctx: Ctx, body: SignIn) -> dict[str, Any]:
    """The last party signature submits the application to the court (and its recordings are wrapped to it)."""
    async with ctx.services.db.session() as s:
        case, app_id = await _draft_application(s, ctx)
        view = await confirmation.sign_application(s, app_id, person_id=await _person_id(s, ctx),
                                                   invite_id=int(ctx.me.invite_id or 0), signature_b64=body.signature)
    if view.status == "submitted":
        await application_submitted(ctx.services, ctx.sio, case.code, app_id, view.court_id)
    await push_agreement(ctx.services, ctx.sio, ctx.room.case_code)
    return {"application_id": app_id, "status": view.status}


async def application_submitted(sv: Any, sio: Any, case_code: str, app_id: int, court_id: str) -> None:
    """The case goes to the court: its recordings' keys are wrapped to the court, the parties are told."""
    wrapped = await wrap_for_court(sv, case_code, court_id, actor="system")
    await notify_parties(sv, sio, case_code, confirmation.app_subject(case_code, app_id), "application_submitted",
                         {"application_id": app_id, "court_id": court_id, "court": sv.courts.get(court_id).name,
                          "recordings_shared": len(wrapped)})
