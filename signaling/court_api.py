"""The court portal's HTTP routes (R25, R26; issue 5 §4-5), for staff with the role court_judge.

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
from sqlalchemy import select

from mediation import audit, sessions
from mediation.agreements import agreement as agreements
from mediation.agreements import confirmation, judging, signing
from mediation.agreements.bundle import build_bundle
from mediation.db import utcnow
from mediation.errors import Forbidden
from mediation.models import Case, ChatMessage, MediationSession
from mediation.permissions import Action
from signaling.agreement_common import (
    application_json,
    court_recordings,
    jsonable,
    notify_parties,
    recording_parts,
    sio_of,
)
from signaling.http_api import Strict, _int, _session, api, base_url, qr_data_url
from signaling.httpkit import Ctx

log = logging.getLogger(__name__)
APP = "/api/court/applications/{id}"


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
    reasoning: str = Field("", max_length=5000)


def _judge_id(ctx: Ctx) -> int:
    assert ctx.user
    return ctx.user.id


def _app_id(ctx: Ctx) -> int:
    return _int(ctx.request.match_info["id"])


async def _notify(ctx: Ctx, app_id: int, kind: str, detail: dict[str, Any]) -> None:
    async with ctx.services.db.session() as s:
        app = await confirmation.application_row(s, app_id)
        case = await s.get(Case, app.case_id)
        assert case
    await notify_parties(ctx.services, sio_of(ctx.request.app), case.code, confirmation.app_subject(case.code, app_id),
                         kind, {"application_id": app_id, **detail})


@api.route("GET", "/api/court/queue", action=Action.COURT_QUEUE)
async def queue(ctx: Ctx, _: None) -> dict[str, Any]:
    """Applications sent to the judge's court awaiting acceptance (3 days) or a ruling (15 + 10 days), with the
    clock that runs now and whether it is overdue; most urgent first."""
    async with ctx.services.db.session() as s:
        items = await judging.judge_queue(s, judge_id=_judge_id(ctx))
    return {"court_id": ctx.user.court_id if ctx.user else None, "queue": jsonable(items)}


async def _transcript(s: Any, case_id: int) -> list[dict[str, Any]]:
    """Chat of the case's sessions; caucus messages are privileged (R9) and left out."""
    q = (select(ChatMessage).join(MediationSession, MediationSession.id == ChatMessage.session_id)
         .where(MediationSession.case_id == case_id, ChatMessage.caucus.is_(None)).order_by(ChatMessage.id))
    return [{"session": m.session_id, "from": m.sender, "name": m.sender_name, "text": m.text,
             "at": m.at.isoformat()} for m in (await s.scalars(q)).all()]


@api.route("GET", APP, action=Action.COURT_VIEW)
async def detail(ctx: Ctx, _: None) -> dict[str, Any]:
    """One application: the agreement with its signatures and integrity check, the transcript, the recordings,
    the audit trail and the clocks. Each part served is logged as a judge's view."""
    app_id, judge_id = _app_id(ctx), _judge_id(ctx)
    async with ctx.services.db.session() as s:
        for what in ("application", "agreement", "transcript", "recording", "audit"):
            await judging.record_view(s, app_id, judge_id=judge_id, what=what)
        application = await application_json(s, app_id)
        case = await s.get(Case, application["case_id"])
        assert case
        view = await agreements.get_agreement(s, application["agreement_id"])
        recs = await court_recordings(s, case.code)
        trail = await audit.entries_for(s, f"case:{case.code}")
        return {
            "application": application,
            "case": {"code": case.code, "title": case.title, "category": case.category, "channel": case.channel},
            "agreement": jsonable(view), "integrity": await signing.verify_signatures(s, view.id),
            "transcript": await _transcript(s, case.id),
            "recordings": [{"id": r.id, "session": r.session_id, "status": r.status, "duration_ms": r.duration_ms,
                            "started_at": r.started_at.isoformat()} for r in recs],
            "audit": [e.to_dict() for e in trail[-500:]],
            "links": {"pdf": f"{APP.replace('{id}', str(app_id))}/agreement.pdf",
                      "bundle": f"{APP.replace('{id}', str(app_id))}/bundle"},
        }


@api.route("GET", APP + "/agreement.pdf", action=Action.COURT_VIEW)
async def agreement_pdf(ctx: Ctx, _: None) -> web.Response:
    """The sealed agreement (logged as a judge's view and as a read of the agreement)."""
    app_id = _app_id(ctx)
    async with ctx.services.db.session() as s:
        await judging.record_view(s, app_id, judge_id=_judge_id(ctx), what="agreement")
        app = await confirmation.application_row(s, app_id)
        data = await agreements.agreement_pdf(s, app.agreement_id, viewer=ctx.actor, sealed=True,
                                              reason=f"court review of application {app_id}")
    return web.Response(body=data, content_type="application/pdf")


@api.route("POST", APP + "/accept", action=Action.COURT_DECIDE)
async def accept(ctx: Ctx, _: None) -> dict[str, Any]:
    """受理 (within 3 days of submission); starts the 15-day ruling clock."""
    app_id = _app_id(ctx)
    async with ctx.services.db.session() as s:
        await judging.accept(s, app_id, judge_id=_judge_id(ctx))
        out = await application_json(s, app_id)
    await _notify(ctx, app_id, "application_accepted", {"ruling_due": out["ruling_due"]})
    return {"application": out}


@api.route("POST", APP + "/decline", action=Action.COURT_DECIDE, body=DeclineIn)
async def decline(ctx: Ctx, body: DeclineIn) -> dict[str, Any]:
    """不予受理 with a ground from the fixed list (CPL-I 355)."""
    app_id = _app_id(ctx)
    async with ctx.services.db.session() as s:
        await judging.decline(s, app_id, judge_id=_judge_id(ctx), ground=body.ground, note=body.note)
        out = await application_json(s, app_id)
    await _notify(ctx, app_id, "application_not_accepted",
                  {"ground": body.ground, "ground_label": judging.NOT_ACCEPTED_GROUNDS[body.ground]})
    return {"application": out}


@api.route("POST", APP + "/extend", action=Action.COURT_DECIDE, body=ExtendIn)
async def extend(ctx: Ctx, body: ExtendIn) -> dict[str, Any]:
    """Extend the ruling period once by 10 days (JC 5)."""
    app_id = _app_id(ctx)
    async with ctx.services.db.session() as s:
        due = await judging.extend(s, app_id, judge_id=_judge_id(ctx), reason=body.reason)
        out = await application_json(s, app_id)
    await _notify(ctx, app_id, "ruling_period_extended", {"ruling_due": due.isoformat()})
    return {"application": out}


@api.route("POST", APP + "/questioning", action=Action.COURT_DECIDE, body=QuestioningIn)
async def questioning(ctx: Ctx, body: QuestioningIn) -> dict[str, Any]:
    """Schedule a remote questioning of both parties (CPL-I 356): a session hosted by the judge, with one invite
    link per person of the case (shown only now)."""
    app_id, judge_id = _app_id(ctx), _judge_id(ctx)
    at = body.at or utcnow()
    base = base_url(ctx)
    async with ctx.services.db.session() as s:
        app = await confirmation.application_row(s, app_id)
        await judging.record_view(s, app_id, judge_id=judge_id, what="application")  # the court check
        case = await s.get(Case, app.case_id)
        assert case
        sess, issued = await sessions.schedule(s, case, host_id=judge_id, at=at, actor=ctx.actor, kind="questioning")
        qid = await judging.schedule_questioning(s, app_id, judge_id=judge_id, at=at, session_id=sess.id,
                                                 note=body.note)
        out = {"questioning": qid, "session": _session(sess),
               "invites": [{"id": i.invite_id, "role": i.role, "name": i.name, "link": i.link(base),
                            "qr": qr_data_url(i.link(base))} for i in issued]}
    await _notify(ctx, app_id, "questioning_scheduled", {"scheduled_at": at.isoformat(), "session": sess.id})
    return out


@api.route("POST", APP + "/rule", action=Action.COURT_RULE, body=RuleIn)
async def rule(ctx: Ctx, body: RuleIn) -> dict[str, Any]:
    """裁定有效 (confirmed) or 驳回 (rejected, with a ground from the fixed list), signed with the court's key."""
    app_id = _app_id(ctx)
    async with ctx.services.db.session() as s:
        ruling = await judging.rule(s, app_id, judge_id=_judge_id(ctx), outcome=body.outcome,
                                    courts=ctx.services.courts, ground=body.ground, reasoning=body.reasoning)
        out = await application_json(s, app_id)
    await _notify(ctx, app_id, "ruling", {"outcome": ruling.outcome, "outcome_label": judging.OUTCOMES[ruling.outcome],
                                          "ground": ruling.ground})
    return {"application": out, "ruling": jsonable(ruling)}


@api.route("GET", APP + "/bundle", action=Action.COURT_BUNDLE)
async def bundle(ctx: Ctx, _: None) -> web.Response:
    """The evidence bundle (docs/bundle.md): only a judge of the court the application was sent to; every fetch
    is audited, and the fetch is inside the bundle's own audit extract."""
    app_id, judge = _app_id(ctx), ctx.user
    assert judge
    sv = ctx.services
    async with sv.db.session() as s:
        app = await confirmation.application_row(s, app_id)
        case = await s.get(Case, app.case_id)
        assert case
        court_id, code = app.court_id, case.code
    if judge.court_id != court_id:
        async with sv.db.session() as s:
            await audit.append(s, actor=ctx.actor, action="bundle.fetch_refused",
                               subject=confirmation.app_subject(code, app_id),
                               detail={"court_id": court_id, "judge_court": judge.court_id})
        raise Forbidden("该申请不是向您所在法院提出的 / this application was sent to another court",
                        code="other_court")
    parts = await recording_parts(sv, code, court_id, actor=ctx.actor)
    reason = ctx.request.query.get("reason", "")[:500]
    async with sv.db.session() as s:
        b = await build_bundle(s, app_id, judge_id=judge.id, notary=sv.notary, courts=sv.courts, recordings=parts,
                               reason=reason)
    log.info("bundle of %s fetched by %s: %d bytes", code, ctx.actor, len(b.data))
    return web.Response(body=b.data, content_type="application/zip",
                        headers={"Content-Disposition": f'attachment; filename="{b.filename}"'})
