"""A party's own copies over HTTP (R20; mediation.party_copies): the invite token and a device-key signature over
a single-use challenge, no login and no live session. Also the center's copy of the ruling, and the review of
the electronic transcript after the session (mediation.transcript_review).

Downloads are streamed and recorded as delivered once the last byte is written (the time it reached them).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from aiohttp import web
from pydantic import Field

from mediation.db import utcnow
from mediation.party_copies import Document, PartyCopies, Proof
from mediation.permissions import Action
from mediation.transcript_review import TranscriptReview
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


class DisputeIn(Strict):
    seq: int = Field(ge=1)
    note: str = Field("", max_length=1000)


class TranscriptAnswerIn(ProofIn):
    verdict: Literal["confirmed", "disputed"]
    disputes: list[DisputeIn] = Field(default_factory=list, max_length=200)
    recording_may_replace: bool

    def answer(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "disputes": [d.model_dump() for d in self.disputes],
                "recording_may_replace": self.recording_may_replace}


class TranscriptSignedIn(TranscriptAnswerIn):
    answer_signature: str = Field(min_length=1, max_length=200)  # base64 raw r||s over the prepared payload


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
    task = asyncio.ensure_future(c.delivered(person_id, invite_id, doc, utcnow()))
    _recording.add(task)
    task.add_done_callback(_recording.discard)
    await asyncio.shield(task)
    return resp


def review(ctx: Ctx) -> TranscriptReview:
    return TranscriptReview(ctx.services.db, ctx.services.challenge_secret)


@api.route("POST", "/api/party/transcript", body=ProofIn, staff=False)
async def transcript(ctx: Ctx, body: ProofIn) -> dict[str, Any]:
    """The session's electronic transcript as closed for review, and this party's answer if it gave one (after
    the session too; the read is logged)."""
    return await review(ctx).view(body.proof())


@api.route("POST", "/api/party/transcript/prepare", body=TranscriptAnswerIn, staff=False)
async def transcript_prepare(ctx: Ctx, body: TranscriptAnswerIn) -> dict[str, Any]:
    """The bytes (base64 `payload`) the device key signs for this answer."""
    return await review(ctx).prepare(body.proof(), **body.answer())


@api.route("POST", "/api/party/transcript/respond", body=TranscriptSignedIn, staff=False)
async def transcript_respond(ctx: Ctx, body: TranscriptSignedIn) -> dict[str, Any]:
    """Confirm the transcript or mark disputed passages, signed by the device key (`answer_signature`)."""
    return await review(ctx).respond(body.proof(), **body.answer(), signature_b64=body.answer_signature)


@api.route("GET", "/api/cases/{code}/ruling.pdf", action=Action.AGREEMENT_VIEW)
async def center_ruling(ctx: Ctx, _: None) -> web.StreamResponse:
    """The court's ruling (裁定书) as a PDF signed by the court's key, for staff of the case's center (logged)."""
    return await send_pdf(ctx, await copies(ctx).ruling_for_center(ctx.actor, ctx.param("code")))
