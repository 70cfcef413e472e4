"""The case file and the electronic transcript in `onedoor simulate` (issue 13 item 6), through the real protocol:
a party bot photographs an IOU (a generated JPEG with a GPS position in its EXIF, which the server strips) and
uploads it with a ticket from its session connection, then shows it to everyone admitted; the mediator writes
transcript entries during the joint session and the caucus (caucus entries stay out of the closed transcript,
R9); the host closes the transcript for review, and every party confirms it with its device key and agrees that
the recording may replace it (R11).
"""

from __future__ import annotations

import asyncio
import base64
import io
from typing import Any

from PIL import Image, ImageDraw

from signaling.client import ProtocolError, SessionClient

GPS_IFD = 0x8825


def iou_photo() -> bytes:
    """A phone photo of an IOU: a JPEG with a camera model and a GPS position in its EXIF."""
    im = Image.new("RGB", (640, 480), (236, 232, 220))
    draw = ImageDraw.Draw(im)
    draw.rectangle((60, 60, 580, 420), outline=(40, 40, 40), width=3)
    for y in range(120, 400, 40):
        draw.line((90, y, 550, y), fill=(90, 90, 90), width=2)
    exif = Image.Exif()
    exif[0x0110] = "SimPhone 1"  # Model
    exif[GPS_IFD] = {1: "N", 2: (36.0, 34.0, 0.0), 3: "E", 4: (101.0, 45.0, 0.0)}
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif, quality=85)
    return out.getvalue()


async def upload_photo(party: SessionClient, others: list[SessionClient]) -> dict[str, Any]:
    """The party uploads the photo (ticket from its connection) and shows it; each other admitted person must get
    `document:shown` with a read URL that serves the picture without its EXIF."""
    data = await asyncio.to_thread(iou_photo)
    t = await party.call("document:ticket")
    async with party.http.post(f"{party.base_url}{t['url']}", params={"filename": "借条.jpg", "purpose": "evidence"},
                               data=data) as r:
        body = await r.json()
        if r.status != 200:
            raise ProtocolError(body["error"])
    doc = body["document"]
    shown = await party.call("document:show", {"document": doc["id"]})
    seen = []
    for c in others:
        await c.wait(lambda c: any(d.get("id") == doc["id"] for d in c.events["document:shown"]))
        got = next(d for d in c.events["document:shown"] if d.get("id") == doc["id"])
        async with c.http.get(f"{c.base_url}{got['url']}") as r:
            content = await r.read()
            if r.status != 200 or r.headers.get("X-Document-SHA256") != doc["sha256"]:
                raise ProtocolError({"code": "document_read", "message": f"{c.pid} could not read the photo"})
        seen.append(c.pid)
    stripped = b"SimPhone" not in content and b"GPS" not in content
    return {"id": doc["id"], "filename": doc["filename"], "media_type": doc["media_type"], "size": doc["size"],
            "sha256": doc["sha256"], "uploaded_by": doc["uploaded_by"], "original_bytes": len(data),
            "metadata_stripped": stripped, "shown_to": shown["shown_to"], "read_by": seen}


async def write(mediator: SessionClient, speaker: SessionClient | None, text: str) -> int:
    body: dict[str, Any] = {"speaker": speaker.info.get("name", speaker.pid) if speaker else "调解员", "text": text}
    if speaker is not None:
        body["speaker_id"] = speaker.pid
    return int((await mediator.call("transcript:write", body))["seq"])


async def close_and_confirm(mediator: SessionClient, parties: list[SessionClient]) -> dict[str, Any]:
    """The host closes the transcript; every party signs its confirmation with its device key."""
    closed = await mediator.call("transcript:close")
    answer = {"verdict": "confirmed", "disputes": [], "recording_may_replace": True}
    responses = []
    for p in parties:
        prepared = await p.call("transcript:prepare", answer)
        if prepared["transcript_sha256"] != closed["sha256"]:
            raise ProtocolError({"code": "transcript_changed", "message": "the transcript changed under review"})
        sig = p.device_key.sign(base64.b64decode(prepared["payload"]))
        out = await p.call("transcript:respond", {**answer, "signature": sig})
        responses.append({"signer": out["signer"], "verdict": out["verdict"],
                          "recording_may_replace": out["recording_may_replace"],
                          "key_fingerprint": out["key_fingerprint"]})
    view = await mediator.call("transcript:get")
    return {"session": view["session"], "sha256": closed["sha256"], "clock": view["clock"],
            "entries": len(view["document"]["entries"]),
            "caucus_entries": sum(1 for e in view["entries"] if e["private"]), "responses": responses}
