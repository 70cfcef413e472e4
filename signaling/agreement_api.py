"""HTTP routes of the mediator's console for the agreement and the judicial-confirmation application (R15-R23).

Registered on the one route table (`signaling.http_api.api`). Reads are audit entries; every change is pushed live
to the case's sessions (`agreement:state`). The court's routes are in court_api.py.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any, Literal

from aiohttp import web
from pydantic import Field
from sqlalchemy import select

from mediation import audit
from mediation.agreements import agreement as agreements
from mediation.agreements import confirmation, package, signing, templates
from mediation.errors import InvalidInput
from mediation.models import Case
from mediation.permissions import Action
from signaling.agreement_common import (
    agreement_json,
    application_json,
    jsonable,
    latest_agreement,
    latest_application,
    live_agreement_id,
    notifications,
    push_agreement,
    sio_of,
)
from signaling.events_agreement import application_submitted
from signaling.http_api import Strict, _case_for, api
from signaling.httpkit import Ctx

log = logging.getLogger(__name__)
BASE = "/api/cases/{code}/agreement"


class TemplateIn(Strict):
    template: str = Field(min_length=1, max_length=40)


class DraftIn(Strict):
    content: dict[str, Any]
    base_version: int = Field(ge=1)
    note: str = Field("", max_length=500)


class ApplicationIn(Strict):
    court_id: str = Field(min_length=1, max_length=50)


class DocumentIn(Strict):
    kind: Literal["power_of_attorney", "property_proof", "other"]
    filename: str = Field(min_length=1, max_length=200)
    data: str = Field(min_length=1, max_length=180_000)  # base64; the request body limit is 256 KiB
    person_id: int | None = None


async def _changed(ctx: Ctx, code: str) -> None:
    await push_agreement(ctx.services, sio_of(ctx.request.app), code)


@api.route("GET", BASE, action=Action.AGREEMENT_VIEW)
async def read(ctx: Ctx, _: None) -> dict[str, Any]:
    """The case's agreement with its live problems, signatures, integrity check, application, deadline and the
    courts that may confirm it (R22). The read is logged."""
    sv = ctx.services
    async with sv.db.session() as s:
        case = await _case_for(s, ctx, ctx.request.match_info["code"])
        view = await latest_agreement(s, case.id)
        out: dict[str, Any] = {"case": case.code, "templates": templates.template_names(), "agreement": None,
                               "application": None, "notifications": await notifications(s, case.code)}
        await audit.append(s, actor=ctx.actor, action="agreement.view", subject=f"case:{case.code}")
        if view is None:
            return out
        out["agreement"] = await agreement_json(s, view)
        if view.final_version is not None and view.status not in ("refused", "void"):
            out["integrity"] = await signing.verify_signatures(s, view.id)
        if view.status in ("effective", "sealed"):
            out["eligibility"] = jsonable(await confirmation.check_eligibility(s, view.id))
            out["deadline"] = jsonable(await confirmation.application_deadline(s, view.id))
            out["courts"] = jsonable(await confirmation.suggest_court(s, view.id, sv.courts))
        app = await latest_application(s, view.id)
        if app is not None:
            out["application"] = await application_json(s, app.id)
        return out


@api.route("POST", BASE, action=Action.AGREEMENT_EDIT, body=TemplateIn)
async def create(ctx: Ctx, body: TemplateIn) -> dict[str, Any]:
    """Start the agreement from a template (neighbours, family_maintenance, wages, traffic, property_management)."""
    assert ctx.user
    async with ctx.services.db.session() as s:
        case = await _case_for(s, ctx, ctx.request.match_info["code"])
        view = await agreements.create_draft(s, case.id, template=body.template, author=ctx.actor,
                                             mediator_id=ctx.user.id)
        out = await agreement_json(s, view)
    await _changed(ctx, case.code)
    return {"agreement": out}


@api.route("POST", BASE + "/draft", action=Action.AGREEMENT_EDIT, body=DraftIn)
async def update(ctx: Ctx, body: DraftIn) -> dict[str, Any]:
    """Save an edited draft as a new version (`base_version`: the version the edit started from)."""
    async with ctx.services.db.session() as s:
        case = await _case_for(s, ctx, ctx.request.match_info["code"])
        view = await agreements.update_draft(s, await live_agreement_id(s, case.id), body.content,
                                             author=ctx.actor, note=body.note, base_version=body.base_version)
        out = await agreement_json(s, view)
    await _changed(ctx, case.code)
    return {"agreement": out}


@api.route("GET", BASE + "/versions", action=Action.AGREEMENT_VIEW)
async def versions(ctx: Ctx, _: None) -> dict[str, Any]:
    """Every saved version of the live agreement, oldest first."""
    async with ctx.services.db.session() as s:
        case = await _case_for(s, ctx, ctx.request.match_info["code"])
        rows = await agreements.list_versions(s, await live_agreement_id(s, case.id))
        await audit.append(s, actor=ctx.actor, action="agreement.versions", subject=f"case:{case.code}")
        return {"versions": jsonable(rows)}


@api.route("POST", BASE + "/finalize", action=Action.AGREEMENT_EDIT)
async def finalize(ctx: Ctx, _: None) -> dict[str, Any]:
    """Validate (missing fields, vague terms: 422 naming the field) and freeze; renders the PDF to sign."""
    async with ctx.services.db.session() as s:
        case = await _case_for(s, ctx, ctx.request.match_info["code"])
        view = await agreements.finalize(s, await live_agreement_id(s, case.id), author=ctx.actor,
                                         notary=ctx.services.notary)
        out = await agreement_json(s, view)
    await _changed(ctx, case.code)
    return {"agreement": out}


@api.route("POST", BASE + "/sign", action=Action.AGREEMENT_SIGN_MEDIATOR)
async def sign(ctx: Ctx, _: None) -> dict[str, Any]:
    """The case's mediator signs with the mediator key held for them (the organization then seals)."""
    assert ctx.user
    async with ctx.services.db.session() as s:
        case = await _case_for(s, ctx, ctx.request.match_info["code"])
        res = await signing.sign_as_mediator(s, await live_agreement_id(s, case.id), staff_id=ctx.user.id,
                                             notary=ctx.services.notary)
        out = await agreement_json(s, res.agreement)
    await _changed(ctx, case.code)
    return {"agreement": out, "effective": res.effective, "sealed": res.sealed}


@api.route("GET", BASE + "/pdf", action=Action.AGREEMENT_VIEW)
async def pdf(ctx: Ctx, _: None) -> web.Response:
    """The PDF the signers sign, or with ?sealed=1 the sealed agreement. Every read is logged (?reason=...)."""
    sealed = ctx.request.query.get("sealed", "") in ("1", "true")
    async with ctx.services.db.session() as s:
        case = await _case_for(s, ctx, ctx.request.match_info["code"])
        view = await latest_agreement(s, case.id)
        if view is None:
            await live_agreement_id(s, case.id)  # raises no_agreement
        assert view is not None
        data = await agreements.agreement_pdf(s, view.id, viewer=ctx.actor, sealed=sealed,
                                              reason=ctx.request.query.get("reason", "")[:500])
    name = f"{case.code}-{'sealed' if sealed else 'unsigned'}.pdf"
    return web.Response(body=data, content_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{name}"'})


@api.route("GET", "/api/agreements/reminders", action=Action.AGREEMENT_VIEW)
async def reminders(ctx: Ctx, _: None) -> dict[str, Any]:
    """Effective agreements of the user's center with no application yet whose 30-day window for judicial
    confirmation ends within ?within_days= (default 7) or has ended (`expired`: warn, R21)."""
    assert ctx.user
    raw = ctx.request.query.get("within_days", "7")
    days = int(raw) if raw.isdigit() and int(raw) <= 30 else 7
    async with ctx.services.db.session() as s:
        due = await confirmation.reminders_due(s, within_days=days)
        ours = set((await s.scalars(select(Case.id).where(Case.center_id == ctx.user.center_id))).all())
        await audit.append(s, actor=ctx.actor, action="agreement.reminders", subject=f"center:{ctx.user.center_id}")
    return {"within_days": days, "reminders": jsonable([r for r in due if r.case_id in ours])}


@api.route("POST", "/api/cases/{code}/application", action=Action.APPLICATION_START, body=ApplicationIn)
async def start_application(ctx: Ctx, body: ApplicationIn) -> dict[str, Any]:
    """Prepare the joint application to a court (R21-R24): refused past the 30-day window
    (410 confirmation_window_passed), for ineligible matters (403 not_eligible, with the reasons) and for a court
    without jurisdiction (422 no_jurisdiction). Each party then signs it in the session (`application:sign`)."""
    sv = ctx.services
    async with sv.db.session() as s:
        case = await _case_for(s, ctx, ctx.request.match_info["code"])
        a_id = await live_agreement_id(s, case.id)
        view = await confirmation.start_application(s, a_id, court_id=body.court_id, courts=sv.courts,
                                                    actor=ctx.actor)
        out = await application_json(s, view.id)
        deadline = jsonable(await confirmation.application_deadline(s, a_id))
        courts = jsonable(await confirmation.suggest_court(s, a_id, sv.courts))
    await _changed(ctx, case.code)
    return {"application": out, "deadline": deadline, "courts": courts}


@api.route("POST", "/api/cases/{code}/application/documents", action=Action.APPLICATION_START, body=DocumentIn)
async def add_document(ctx: Ctx, body: DocumentIn) -> dict[str, Any]:
    """Attach a power of attorney (person_id: the agent), a proof of property rights or another document."""
    try:
        data = base64.b64decode(body.data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("data must be base64", code="bad_document") from None
    sv = ctx.services
    async with sv.db.session() as s:
        case = await _case_for(s, ctx, ctx.request.match_info["code"])
        view = await agreements.agreement_for_case(s, case.id)
        app = await latest_application(s, view.id) if view else None
        if app is None:
            await confirmation.application_row(s, 0)  # raises no_application
        assert app is not None
        doc = await package.add_document(s, app.id, kind=body.kind, filename=body.filename, data=data,
                                         actor=ctx.actor, person_id=body.person_id)
        out = await application_json(s, app.id)
    if out["status"] == "submitted":
        await application_submitted(sv, sio_of(ctx.request.app), case.code, app.id, out["court_id"])
    await _changed(ctx, case.code)
    return {"document": doc, "application": out}
