"""Case-file and transcript events inside a session (issue 13): documents shown under the caucus routing (R9),
the electronic transcript written live, closed for review, and confirmed or disputed by each party with its
device key (R11). Handlers parse, call mediation.documents / mediation.transcript, and emit what they return.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from mediation import documents
from mediation import transcript as tx
from mediation.permissions import Action
from signaling.sockets import Ctx, Empty, EventTable, Payload

events = EventTable()


class ShowIn(Payload):
    document: str = Field(min_length=5, max_length=40)


class WriteIn(Payload):
    speaker: str = Field(min_length=1, max_length=200)
    speaker_id: str | None = Field(None, max_length=40)
    text: str = Field(min_length=1, max_length=tx.TEXT_MAX)
    at_ms: int | None = Field(None, ge=0)
    draft: str | None = Field(None, max_length=80)  # accept this speech draft line (`transcript:draft`), as edited


class Dispute(Payload):
    seq: int = Field(ge=1)
    note: str = Field("", max_length=1000)


class AnswerIn(Payload):
    verdict: str = Field(pattern="^(confirmed|disputed)$")
    disputes: list[Dispute] = Field(default_factory=list, max_length=200)
    recording_may_replace: bool


class RespondIn(AnswerIn):
    signature: str = Field(min_length=1, max_length=200)  # base64 of the 64-byte raw r||s


def _read_url(doc_id: str, ticket: str) -> str:
    return f"/api/documents/{doc_id}/content?ticket={ticket}"


@events.on("document:ticket", Action.DOCUMENT_UPLOAD, Empty)
async def upload_ticket(ctx: Ctx, _: Empty) -> dict[str, Any]:
    """A ticket for one HTTP upload (`POST /api/documents/upload?ticket=`), valid 10 minutes; also in the lobby."""
    t = documents.ticket(ctx.services.challenge_secret, ctx.actor, "upload")
    return {"ticket": t, "url": f"/api/documents/upload?ticket={t}"}


@events.on("document:list", Action.DOCUMENT_READ, Empty, admitted=True)
async def listing(ctx: Ctx, _: Empty) -> dict[str, Any]:
    """The case file as this person may see it, each item with a read URL for this person."""
    secret = ctx.services.challenge_secret
    docs = await ctx.services.case_file.listing(ctx.actor, None)
    return {"documents": [{**d, "url": _read_url(d["id"], documents.ticket(secret, ctx.actor, f"read:{d['id']}"))}
                          for d in docs]}


@events.on("document:show", Action.DOCUMENT_SHOW, ShowIn, admitted=True)
async def show(ctx: Ctx, body: ShowIn) -> dict[str, Any]:
    """`document:shown` to everyone admitted on the shower's side of the caucus (inside a caucus: only inside)."""
    doc, tickets = await ctx.services.case_file.show(ctx.live, ctx.me, ctx.actor, body.document)
    for pid, t in tickets.items():
        await ctx.emit("document:shown", {**doc, "url": _read_url(doc["id"], t)}, to=pid)
    return {"shown_to": sorted(tickets)}


@events.on("transcript:write", Action.TRANSCRIPT_WRITE, WriteIn, admitted=True)
async def write(ctx: Ctx, body: WriteIn) -> dict[str, Any]:
    entry, to = await tx.write(ctx.services.db, ctx.live, ctx.me, ctx.actor, speaker=body.speaker,
                               speaker_id=body.speaker_id, text=body.text, at_ms=body.at_ms, draft=body.draft)
    for pid in to:
        await ctx.emit("transcript:entry", entry, to=pid)
    return {"seq": entry["seq"], "at_ms": entry["at_ms"]}


@events.on("transcript:get", Action.TRANSCRIPT_READ, Empty, admitted=True)
async def get(ctx: Ctx, _: Empty) -> dict[str, Any]:
    return await tx.view(ctx.services.db, ctx.live, ctx.me, ctx.actor)


@events.on("transcript:close", Action.TRANSCRIPT_CLOSE, Empty, admitted=True)
async def close(ctx: Ctx, _: Empty) -> dict[str, Any]:
    """Freeze the transcript; every admitted person gets `transcript:review` (parties then confirm or dispute)."""
    review = await tx.close(ctx.services.db, ctx.live, ctx.actor)
    for p in ctx.live.admitted():
        await ctx.emit("transcript:review", review, to=p.pid)
    return {"sha256": review["sha256"]}


@events.on("transcript:prepare", Action.TRANSCRIPT_RESPOND, AnswerIn, admitted=True)
async def prepare(ctx: Ctx, body: AnswerIn) -> dict[str, Any]:
    """The bytes (base64) to sign with the device key for this answer."""
    return await tx.prepare(ctx.services.db, ctx.live, ctx.me, ctx.actor, verdict=body.verdict,
                            disputes=[d.model_dump() for d in body.disputes],
                            recording_may_replace=body.recording_may_replace)


@events.on("transcript:respond", Action.TRANSCRIPT_RESPOND, RespondIn, admitted=True)
async def respond(ctx: Ctx, body: RespondIn) -> dict[str, Any]:
    """Store the signed answer; the mediators get `transcript:response`."""
    out = await tx.respond(ctx.services.db, ctx.live, ctx.me, ctx.actor, verdict=body.verdict,
                           disputes=[d.model_dump() for d in body.disputes],
                           recording_may_replace=body.recording_may_replace, signature_b64=body.signature)
    for p in ctx.live.admitted():
        if p.is_mediator:
            await ctx.emit("transcript:response", out, to=p.pid)
    return out
