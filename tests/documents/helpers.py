"""Helpers for the case-file tests: pictures with GPS in their EXIF, uploads the way the pages make them."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image

from signaling.client import ProtocolError, SessionClient

GPS_IFD = 0x8825


def jpeg_with_gps(marker: bytes = b"") -> bytes:
    """A small JPEG whose EXIF holds a GPS position (36°34'N 101°45'E) and a camera model; `marker` goes into
    the EXIF too, so a test can look for those exact bytes on disk."""
    im = Image.new("RGB", (64, 48), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0110] = "TestPhone 12"  # Model
    exif[0x010E] = marker.decode() if marker else "IOU photo"  # ImageDescription
    exif[GPS_IFD] = {1: "N", 2: (36.0, 34.0, 0.0), 3: "E", 4: (101.0, 45.0, 0.0)}
    out = io.BytesIO()
    im.save(out, "JPEG", exif=exif, quality=95)
    return out.getvalue()


async def party_upload(c: SessionClient, data: bytes, *, filename: str = "iou.jpg", purpose: str = "evidence"
                       ) -> dict[str, Any]:
    t = await c.call("document:ticket")
    async with c.http.post(f"{c.base_url}{t['url']}", params={"filename": filename, "purpose": purpose},
                           data=data) as r:
        body = await r.json()
        if r.status != 200:
            raise ProtocolError(body["error"])
        return dict(body["document"])


async def staff_upload(c: SessionClient, code: str, data: bytes, **params: Any) -> tuple[int, dict[str, Any]]:
    async with c.http.post(f"{c.base_url}/api/cases/{code}/documents", params=params, data=io.BytesIO(data),
                           headers={"X-CSRF-Token": c.csrf}) as r:
        return r.status, await r.json()


async def fetch(c: SessionClient, url: str) -> tuple[int, bytes, dict[str, str]]:
    async with c.http.get(f"{c.base_url}{url}") as r:
        return r.status, await r.read(), dict(r.headers)
