"""A party's own copies over HTTP (R20; mediation.party_copies): the invite token and a device-key signature over
a single-use challenge, no login and no live session. Also the center's copy of the ruling.

Downloads are streamed and recorded as delivered once the last byte is written (the time it reached them).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web
from pydantic import Field

from mediation.party_copies import Document, PartyCopies, Proof
from mediation.permissions import Action
from signaling.http_api import JoinIn, Strict
from signaling.httpkit import Api, Ctx

api = Api()
_recording: set[asyncio.Task[None]] = set()  # deliveries being recorded (kept referenced until done)


class ProofIn(Strict):
    token: str = Field(min_length=16, max_length=100)
    challenge: str = Field(min_length=1, max_length=400)
    signature: str = Field(min_length=1, max_length=400)

    def proof(self) -> Proof:
        return Proof(self.token, self.challenge, self.signature)


class ConsentIn(ProofIn):
    granted: bool


def copies(ctx: Ctx) -> PartyCopies:
    sv = ctx.services
    return PartyCopies(sv.db, lambda: sv.notary, lambda: sv.courts, sv.challenge_secret)


async def send_pdf(ctx: Ctx, doc: Document) -> web.StreamResponse:
    """Stream a PDF as an attachment; returns once the last byte was handed to the connection."""
    resp = web.StreamResponse(headers={
        "Content-Type": "application/pdf", "Content-Disposition": f'attachment; filename="{doc.filename}"',
        "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", "X-Document-SHA256": doc.sha256,
        **doc.headers})
    resp.content_length = len(doc.data)
    await resp.prepare(ctx.request)
    await resp.write(doc.data)
    await resp.write_eof()
    return resp


@api.route("POST", "/api/party/challenge", body=JoinIn, staff=False)
async def challenge(ctx: Ctx, body: JoinIn) -> dict[str, Any]:
    """A fresh single-use challenge for a party's device proof (the invite must already be bound to a device)."""
    return await copies(ctx).challenge(body.token)


@api.route("POST", "/api/party/documents", body=ProofIn, staff=False)
async def listing(ctx: Ctx, body: ProofIn) -> dict[str, Any]:
    """The party's documents (agreement as signed and sealed, application, ruling), its consent to electronic
    service, and its past downloads."""
    return await copies(ctx).listing(body.proof())


@api.route("POST", "/api/party/consent", body=ConsentIn, staff=False)
async def consent(ctx: Ctx, body: ConsentIn) -> dict[str, Any]:
    """Consent (or not) to electronic service of documents (asked once; logged)."""
    return {"service_consent": await copies(ctx).consent(body.proof(), body.granted)}


@api.route("POST", "/api/party/documents/{kind}", body=ProofIn, staff=False)
async def download(ctx: Ctx, body: ProofIn) -> web.StreamResponse:
    """One document to the party's own device, with electronic-service consent; the delivery time is logged."""
    c = copies(ctx)
    doc, person_id, invite_id = await c.document(body.proof(), ctx.param("kind"))
    resp = await send_pdf(ctx, doc)
    # The client may hang up as soon as it has the last byte, cancelling this handler: record the delivery in a
    # task of its own.
    task = asyncio.ensure_future(c.delivered(person_id, invite_id, doc))
    _recording.add(task)
    task.add_done_callback(_recording.discard)
    await asyncio.shield(task)
    return resp


@api.route("GET", "/api/cases/{code}/ruling.pdf", action=Action.AGREEMENT_VIEW)
async def center_ruling(ctx: Ctx, _: None) -> web.StreamResponse:
    """The court's ruling (裁定书) as a PDF signed by the court's key, for staff of the case's center (logged)."""
    return await send_pdf(ctx, await copies(ctx).ruling_for_center(ctx.actor, ctx.param("code")))
