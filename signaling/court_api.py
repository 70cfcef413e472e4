"""The court portal's HTTP routes (R25, R26; issue 5 §4-5), for staff with the role court_judge (mediation.court_portal).

A judge sees only applications sent to their own court (403 other_court otherwise). Every view is an audit entry
(`judge_viewed`), every bundle fetch too (`bundle.fetch`, and `bundle.fetch_refused` for a judge of another court).
Decisions are pushed to the parties connected to a session of the case (`court:notice`) and logged.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from mediation.agreements.judging import require_reasoning
from mediation.casework import session_json
from mediation.court_portal import APP, CourtPortal
from mediation.notices import Notice
from mediation.permissions import Action
from signaling.http_api import PUBLISHER, Strict, int_param, invite_json
from signaling.httpkit import Api, Ctx
from signaling.party_api import copies, send_pdf

log = logging.getLogger(__name__)
api = Api()


class DeclineIn(Strict):
    ground: str = Field(max_length=40)
    note: str = Field("", max_length=2000)


class ExtendIn(Strict):
    reason: str = Field(min_length=1, max_length=2000)


class QuestioningIn(Strict):
    at: dt.datetime | None = None
    note: str = Field("", max_length=2000)


class RuleIn(Strict):
    outcome: Literal["confirmed", "rejected"]
    ground: str | None = Field(None, max_length=40)
    reasoning: str = Field("", max_length=5000)  # required: 422 reasoning_required when empty


def _portal(ctx: Ctx) -> CourtPortal:
    sv = ctx.services
    return CourtPortal(sv.db, lambda: sv.notary, lambda: sv.courts)


def _app_id(ctx: Ctx) -> int:
    return int_param(ctx.param("id"), "application")


async def _notify(ctx: Ctx, notice: Notice) -> None:
    await ctx.request.app[PUBLISHER].deliver([notice])


@api.route("GET", "/api/court/queue", action=Action.COURT_QUEUE)
async def queue(ctx: Ctx, _: None) -> dict[str, Any]:
    """Applications sent to the judge's court awaiting acceptance (3 days) or a ruling (15 + 10 days), with the
    clock that runs now and whether it is overdue; most urgent first."""
    return {"court_id": ctx.actor.court_id, "queue": await _portal(ctx).queue(ctx.actor)}


@api.route("GET", APP, action=Action.COURT_VIEW)
async def detail(ctx: Ctx, _: None) -> dict[str, Any]:
    """One application: the agreement with its signatures and integrity check, the transcript, the recordings,
    the audit trail and the clocks. Each part served is logged as a judge's view."""
    return await _portal(ctx).detail(ctx.actor, _app_id(ctx))


@api.route("GET", APP + "/agreement.pdf", action=Action.COURT_VIEW)
async def agreement_pdf(ctx: Ctx, _: None) -> web.Response:
    """The sealed agreement (logged as a judge's view and as a read of the agreement)."""
    return web.Response(body=await _portal(ctx).agreement_pdf(ctx.actor, _app_id(ctx)),
                        content_type="application/pdf")


@api.route("POST", APP + "/accept", action=Action.COURT_DECIDE)
async def accept(ctx: Ctx, _: None) -> dict[str, Any]:
    """受理 (within 3 days of submission); starts the 15-day ruling clock."""
    out, notice = await _portal(ctx).accept(ctx.actor, _app_id(ctx))
    await _notify(ctx, notice)
    return {"application": out}


@api.route("POST", APP + "/decline", action=Action.COURT_DECIDE, body=DeclineIn)
async def decline(ctx: Ctx, body: DeclineIn) -> dict[str, Any]:
    """不予受理 with a ground from the fixed list (CPL-I 355)."""
    out, notice = await _portal(ctx).decline(ctx.actor, _app_id(ctx), body.ground, body.note)
    await _notify(ctx, notice)
    return {"application": out}


@api.route("POST", APP + "/extend", action=Action.COURT_DECIDE, body=ExtendIn)
async def extend(ctx: Ctx, body: ExtendIn) -> dict[str, Any]:
    """Extend the ruling period once by 10 days (JC 5)."""
    out, notice = await _portal(ctx).extend(ctx.actor, _app_id(ctx), body.reason)
    await _notify(ctx, notice)
    return {"application": out}


@api.route("POST", APP + "/questioning", action=Action.COURT_DECIDE, body=QuestioningIn)
async def questioning(ctx: Ctx, body: QuestioningIn) -> dict[str, Any]:
    """Schedule a remote questioning of both parties (CPL-I 356): a session hosted by the judge, with one invite
    link per person of the case (shown only now)."""
    qid, sess, issued, notice = await _portal(ctx).questioning(ctx.actor, _app_id(ctx), body.at, body.note)
    await _notify(ctx, notice)
    invites = [await invite_json(ctx, i) for i in issued]
    return {"questioning": qid, "session": session_json(sess), "invites": invites}


@api.route("POST", APP + "/rule", action=Action.COURT_RULE, body=RuleIn)
async def rule(ctx: Ctx, body: RuleIn) -> dict[str, Any]:
    """裁定有效 (confirmed) or 驳回 (rejected, with a ground from the fixed list) with the court's reasoning
    (422 `reasoning_required` when empty), signed with the court's key; the answer carries the objection windows."""
    reasoning = require_reasoning(body.reasoning)
    out, ruling, notice = await _portal(ctx).rule(ctx.actor, _app_id(ctx), body.outcome, body.ground, reasoning)
    await _notify(ctx, notice)
    return {"application": out, "ruling": ruling}


@api.route("GET", APP + "/ruling.pdf", action=Action.COURT_VIEW)
async def ruling_pdf(ctx: Ctx, _: None) -> web.StreamResponse:
    """The ruling (裁定书) as a PDF signed by the court's key (X-Court-Signature: Ed25519 over the PDF bytes)."""
    return await send_pdf(ctx, await copies(ctx).ruling_for_court(ctx.actor, _app_id(ctx)))


@api.route("GET", APP + "/bundle", action=Action.COURT_BUNDLE)
async def bundle(ctx: Ctx, _: None) -> web.Response:
    """The evidence bundle (docs/bundle.md): only a judge of the court the application was sent to; every fetch
    is audited, and the fetch is inside the bundle's own audit extract."""
    app_id, portal = _app_id(ctx), _portal(ctx)
    code, court_id = await portal.bundle_target(ctx.actor, app_id)
    parts = await ctx.services.court_share.parts(code, court_id, actor=ctx.actor.id)
    docs = await ctx.services.court_documents.parts(code, court_id)
    b = await portal.bundle(ctx.actor, app_id, parts, ctx.request.query.get("reason", "")[:500], docs)
    log.info("bundle of %s fetched by %s: %d bytes", code, ctx.actor.id, len(b.data))
    return web.Response(body=b.data, content_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{b.filename}"'})
