"""HTTP routes of the mediator's console for the agreement and the judicial-confirmation application (R15-R23).

All of it is the workflow facade (mediation.workflow), the same one the session's events call; reads are audit
entries; every change is pushed live to the case's sessions (`agreement:state`). The court's routes are in
court_api.py.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from mediation.errors import InvalidInput
from mediation.notices import Event
from mediation.permissions import Action
from signaling.http_api import PUBLISHER, Strict
from signaling.httpkit import Api, Ctx

api = Api()
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
    """Either `document` (a case-file document's id) or `kind` + `filename` + `data` (uploaded into the case
    file, then attached)."""

    document: str | None = Field(None, min_length=5, max_length=40)
    kind: Literal["power_of_attorney", "property_proof", "other"] | None = None
    filename: str | None = Field(None, min_length=1, max_length=200)
    data: str | None = Field(None, min_length=1, max_length=180_000)  # base64; the request body limit is 256 KiB
    person_id: int | None = None


async def _done(ctx: Ctx, result: tuple[dict[str, Any], list[Event]]) -> dict[str, Any]:
    out, events = result
    await ctx.request.app[PUBLISHER].deliver(events)
    return out


@api.route("GET", BASE, action=Action.AGREEMENT_VIEW)
async def read(ctx: Ctx, _: None) -> dict[str, Any]:
    """The case's agreement with its live problems, signatures, integrity check, application, deadline and the
    courts that may confirm it (R22). The read is logged."""
    return await ctx.services.workflow.read_console(ctx.actor, ctx.param("code"))


@api.route("POST", BASE, action=Action.AGREEMENT_EDIT, body=TemplateIn)
async def create(ctx: Ctx, body: TemplateIn) -> dict[str, Any]:
    """Start the agreement from a template (neighbours, family_maintenance, wages, traffic, property_management)."""
    return await _done(ctx, await ctx.services.workflow.draft(ctx.actor, ctx.param("code"), body.template))


@api.route("POST", BASE + "/draft", action=Action.AGREEMENT_EDIT, body=DraftIn)
async def update(ctx: Ctx, body: DraftIn) -> dict[str, Any]:
    """Save an edited draft as a new version (`base_version`: the version the edit started from)."""
    return await _done(ctx, await ctx.services.workflow.update(ctx.actor, ctx.param("code"), body.content,
                                                               body.base_version, body.note))


@api.route("GET", BASE + "/versions", action=Action.AGREEMENT_VIEW)
async def versions(ctx: Ctx, _: None) -> dict[str, Any]:
    """Every saved version of the live agreement, oldest first."""
    return {"versions": await ctx.services.workflow.versions(ctx.actor, ctx.param("code"))}


@api.route("POST", BASE + "/finalize", action=Action.AGREEMENT_EDIT)
async def finalize(ctx: Ctx, _: None) -> dict[str, Any]:
    """Validate (missing fields, vague terms: 422 naming the field) and freeze; renders the PDF to sign."""
    return await _done(ctx, await ctx.services.workflow.finalize(ctx.actor, ctx.param("code")))


@api.route("POST", BASE + "/sign", action=Action.AGREEMENT_SIGN_MEDIATOR)
async def sign(ctx: Ctx, _: None) -> dict[str, Any]:
    """The case's mediator signs with the mediator key held for them (the organization then seals)."""
    out = await _done(ctx, await ctx.services.workflow.sign_mediator(ctx.actor, ctx.param("code")))
    out.pop("status", None)
    return out


@api.route("GET", BASE + "/pdf", action=Action.AGREEMENT_VIEW)
async def pdf(ctx: Ctx, _: None) -> web.Response:
    """The PDF the signers sign, or with ?sealed=1 the sealed agreement. Every read is logged (?reason=...)."""
    sealed = ctx.request.query.get("sealed", "") in ("1", "true")
    name, data = await ctx.services.workflow.pdf(ctx.actor, ctx.param("code"), sealed=sealed,
                                                 reason=ctx.request.query.get("reason", "")[:500])
    return web.Response(body=data, content_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="{name}"'})


@api.route("GET", "/api/agreements/reminders", action=Action.AGREEMENT_VIEW)
async def reminders(ctx: Ctx, _: None) -> dict[str, Any]:
    """Effective agreements of the user's center with no application yet whose 30-day window for judicial
    confirmation ends within ?within_days= (default 7) or has ended (`expired`: warn, R21)."""
    raw = ctx.request.query.get("within_days", "7")
    days = int(raw) if raw.isascii() and raw.isdigit() and int(raw) <= 30 else 7
    return {"within_days": days, "reminders": await ctx.services.workflow.reminders(ctx.actor, days)}


@api.route("POST", "/api/cases/{code}/application", action=Action.APPLICATION_START, body=ApplicationIn)
async def start_application(ctx: Ctx, body: ApplicationIn) -> dict[str, Any]:
    """Prepare the joint application to a court (R21-R24): refused past the 30-day window
    (410 confirmation_window_passed), for ineligible matters (403 not_eligible, with the reasons) and for a court
    without jurisdiction (422 no_jurisdiction). Each party then signs it in the session (`application:sign`)."""
    return await _done(ctx, await ctx.services.workflow.start_application(ctx.actor, ctx.param("code"),
                                                                          body.court_id))


@api.route("POST", "/api/cases/{code}/application/documents", action=Action.APPLICATION_START, body=DocumentIn)
async def add_document(ctx: Ctx, body: DocumentIn) -> dict[str, Any]:
    """Attach a case-file document (`document`: its id) to the application: a power of attorney (its person_id
    names the agent), a proof of property rights, or another document; or upload one into the case file and
    attach it in one step (`kind`, `filename`, `data` base64, `person_id`)."""
    files = ctx.services.application_files
    if body.document is not None:
        return await _done(ctx, await files.attach(ctx.actor, ctx.param("code"), body.document))
    if body.kind is None or body.filename is None or body.data is None:
        raise InvalidInput("document, or kind + filename + data", code="missing_field")
    try:
        data = base64.b64decode(body.data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput("data must be base64", code="bad_document") from None
    return await _done(ctx, await files.upload(ctx.actor, ctx.param("code"), kind=body.kind, filename=body.filename,
                                               data=data, person_id=body.person_id))
