"""HTTP routes of the case file (issue 13 item 1; mediation.documents).

The file's bytes are the request body (any Content-Type; the type is sniffed from the content), at most
`MAX_SIZE`; the name, purpose and agent come as query parameters. Staff use their login; a party or agent of a
session uses a ticket its session connection got (`document:ticket` for an upload; a read ticket comes with each
`document:shown` and `document:list` item). Contents are served as attachments with a sandboxing CSP: a PDF is
never rendered by the server, and the browser opens it apart from our pages.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from mediation.documents import MAX_SIZE, ticket_actor
from mediation.errors import InvalidInput, TooLarge
from mediation.permissions import Action
from signaling.httpkit import Api, Ctx

api = Api()


async def _body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_SIZE:
        raise TooLarge("文件过大（最大 10 MB）/ file too large (10 MB at most)", code="too_large")
    data = await request.content.read(MAX_SIZE + 1)
    while len(data) <= MAX_SIZE and not request.content.at_eof():
        more = await request.content.read(MAX_SIZE + 1 - len(data))
        if not more:
            break
        data += more
    if len(data) > MAX_SIZE:
        raise TooLarge("文件过大（最大 10 MB）/ file too large (10 MB at most)", code="too_large")
    return data


def _upload_args(ctx: Ctx) -> dict[str, Any]:
    q = ctx.request.query
    raw = q.get("person_id", "")
    if raw and not (raw.isascii() and raw.isdigit()):
        raise InvalidInput("person_id must be a number", code="invalid_input")
    return {"filename": q.get("filename", "")[:200] or "document", "purpose": q.get("purpose", "evidence")[:40],
            "person_id": int(raw) if raw else None}


def _content(meta: dict[str, Any], data: bytes) -> web.Response:
    disposition = "inline" if meta["media_type"].startswith("image/") else "attachment"
    return web.Response(body=data, headers={
        "Content-Type": meta["media_type"], "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
        "Content-Disposition": f'{disposition}; filename="{meta["id"]}{meta["filename"][-4:]}"',
        "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
        "X-Document-SHA256": meta["sha256"]})


@api.route("POST", "/api/cases/{code}/documents", action=Action.DOCUMENT_UPLOAD)
async def upload(ctx: Ctx, _: None) -> dict[str, Any]:
    """Put a photo (JPEG/PNG, re-encoded without EXIF/GPS) or a PDF into the case file: the body is the file;
    ?filename=&purpose=evidence|power_of_attorney|property_proof|other&person_id= (a power of attorney names
    its agent). 413 too_large, 422 unsupported_type / bad_document."""
    return {"document": await ctx.services.case_file.upload(ctx.actor, ctx.param("code"), data=await _body(
        ctx.request), **_upload_args(ctx))}


@api.route("GET", "/api/cases/{code}/documents", action=Action.DOCUMENT_READ)
async def listing(ctx: Ctx, _: None) -> dict[str, Any]:
    """The case file (staff of the case's center)."""
    return {"documents": await ctx.services.case_file.listing(ctx.actor, ctx.param("code"))}


@api.route("GET", "/api/cases/{code}/documents/{id}", action=Action.DOCUMENT_READ)
async def read(ctx: Ctx, _: None) -> web.Response:
    """One document's content (decrypted for this response only); the read is logged with ?reason=."""
    meta, data = await ctx.services.case_file.read(ctx.actor, ctx.param("id"),
                                                   ctx.request.query.get("reason", "")[:300], code=ctx.param("code"))
    return _content(meta, data)


@api.route("POST", "/api/documents/upload", staff=False)
async def party_upload(ctx: Ctx, _: None) -> dict[str, Any]:
    """A session participant's upload with ?ticket= from `document:ticket` (phone camera or file)."""
    sv = ctx.services
    actor = ticket_actor(sv.challenge_secret, ctx.request.query.get("ticket", ""), "upload")
    return {"document": await sv.case_file.upload(actor, None, data=await _body(ctx.request), **_upload_args(ctx))}


@api.route("GET", "/api/documents/{id}/content", staff=False)
async def party_read(ctx: Ctx, _: None) -> web.Response:
    """A document shown to (or listed for) a session participant, with the read ticket that came with it."""
    sv = ctx.services
    doc_id = ctx.param("id")
    actor = ticket_actor(sv.challenge_secret, ctx.request.query.get("ticket", ""), f"read:{doc_id}")
    meta, data = await sv.case_file.read(actor, doc_id, "shown in the session", by_ticket=True)
    return _content(meta, data)
