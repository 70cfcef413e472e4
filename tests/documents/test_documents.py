"""The case file end to end (issue 13 item 1): uploads by a party's connection and by staff, sniffing, EXIF/GPS
stripped, nothing readable at rest, every read logged, and a document shown in a caucus staying inside (R9)."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path

import pytest
from PIL import Image

from mediation import audit
from signaling.client import ProtocolError
from tests.conftest import World
from tests.documents.helpers import GPS_IFD, fetch, jpeg_with_gps, party_upload, staff_upload

pytestmark = pytest.mark.timeout(60)


def _files(root: Path) -> list[Path]:
    return [Path(d) / f for d, _, fs in os.walk(root) for f in fs]


async def test_party_photo_is_stripped_encrypted_and_every_read_logged(world: World) -> None:
    m, a, b = await world.trio()
    marker = b"ONEDOOR-PLAINTEXT-MARKER-7f3a"
    photo = jpeg_with_gps(marker)
    assert Image.open(io.BytesIO(photo)).getexif().get_ifd(GPS_IFD)  # the test picture really has GPS
    doc = await party_upload(a, photo, filename="../../欠条 照片.JPG")
    assert doc["media_type"] == "image/jpeg" and doc["filename"].endswith(".jpg") and "/" not in doc["filename"]
    assert doc["uploader"] == "张三" and doc["purpose"] == "evidence"

    # shown to everyone admitted: each gets it with a read ticket of their own
    ack = await a.call("document:show", {"document": doc["id"]})
    assert set(ack["shown_to"]) == {m.pid, a.pid, b.pid}
    shown = await b.wait_event("document:shown")
    status, content, headers = await fetch(b, shown["url"])
    assert status == 200 and headers["Content-Type"] == "image/jpeg"
    assert "sandbox" in headers["Content-Security-Policy"]
    im = Image.open(io.BytesIO(content))
    assert im.size == (64, 48)
    exif = im.getexif()
    assert not exif.get_ifd(GPS_IFD) and 0x0110 not in exif and marker not in content  # metadata gone
    assert b"Exif" not in content[:200]
    # B's ticket is B's: it does not open another document, and a forged one is refused
    status, _, _ = await fetch(b, shown["url"].replace(doc["id"], "doc-00000000000000000000"))
    assert status == 401
    status, _, _ = await fetch(b, shown["url"][:-3] + "abc")
    assert status == 401

    # nothing readable at rest: neither the uploaded bytes nor the stored picture's pixels' file
    data_dir = world.services.settings.data_dir
    await asyncio.sleep(0)
    for f in _files(data_dir):
        raw = f.read_bytes()
        assert marker not in raw and photo[-200:] not in raw and content[-200:] not in raw, f
    stored = [f for f in _files(data_dir / "documents")]
    assert len(stored) == 1 and stored[0].read_bytes()[:6] == b"ODREC\x1a"
    assert oct(stored[0].stat().st_mode & 0o777) == "0o600"

    # the mediator's console reads it too; every read is an audit entry with the hash of what is stored
    async with m.http.get(f"{m.base_url}/api/cases/{world.case_code}/documents") as r:
        listing = (await r.json())["documents"]
    assert [d["id"] for d in listing] == [doc["id"]]
    status2, content2, _ = await fetch(m, f"/api/cases/{world.case_code}/documents/{doc['id']}?reason=review")
    assert status2 == 200 and content2 == content
    async with world.services.db.session() as s:
        entries = await audit.entries_for(s, f"case:{world.case_code}/document:{doc['id']}")
    actions = [e.action for e in entries]
    assert actions.count("document.upload") == 1 and actions.count("document.read") == 2
    assert actions.count("document.shown") == 1
    assert doc["sha256"] in entries[0].detail


async def test_sniffing_size_and_who_may_upload(world: World) -> None:
    m, a, _ = await world.trio()
    clerk = await world.staff("clerk", session=False)
    pdf = b"%PDF-1.7\n1 0 obj <<>> endobj\n%%EOF\n"
    status, body = await staff_upload(clerk, world.case_code, pdf, filename="房产证明.pdf", purpose="property_proof")
    assert status == 200 and body["document"]["media_type"] == "application/pdf"
    status, body = await staff_upload(clerk, world.case_code, b"<html><script>alert(1)</script>", filename="x.jpg")
    assert status == 422 and body["error"]["code"] == "unsupported_type"
    status, body = await staff_upload(clerk, world.case_code, b"\xff\xd8\xff\xe0 not really a jpeg", filename="a.jpg")
    assert status == 422 and body["error"]["code"] == "bad_document"
    status, body = await staff_upload(clerk, world.case_code, pdf, purpose="power_of_attorney")
    assert status == 422 and body["error"]["detail"]["field"] == "person_id"
    big = b"%PDF-1.4\n" + b"0" * (10 * 1024 * 1024)
    status, body = await staff_upload(clerk, world.case_code, big, filename="big.pdf")
    assert status == 413
    judge = await world.staff("judge", session=False)
    status, body = await staff_upload(judge, world.case_code, pdf)
    assert status == 403
    with pytest.raises(ProtocolError) as e:
        await party_upload(a, b"GIF89a....")
    assert e.value.error["code"] == "unsupported_type"
    # a party sees its own uploads and what was shown jointly, not the clerk's PDF
    assert (await a.call("document:list"))["documents"] == []
    assert len((await m.call("document:list"))["documents"]) == 1


async def test_a_document_shown_in_a_caucus_stays_inside(world: World) -> None:
    m, a, b = await world.trio()
    doc = await party_upload(a, jpeg_with_gps())
    await m.call("caucus:open", {"members": [m.pid, a.pid]})
    ack = await a.call("document:show", {"document": doc["id"]})
    assert set(ack["shown_to"]) == {m.pid, a.pid}
    await m.wait_event("document:shown")
    shown_a = await a.wait_event("document:shown")
    assert shown_a["private"] is True
    await asyncio.sleep(0.3)
    assert b.events["document:shown"] == []  # at the receiving client: nothing reached the outside
    # shown only inside a caucus: privileged, so not shown jointly after the caucus either, nor listed for B
    await m.call("caucus:close")
    with pytest.raises(ProtocolError) as e:
        await m.call("document:show", {"document": doc["id"]})
    assert e.value.error["code"] == "privileged"
    assert (await b.call("document:list"))["documents"] == []
    with pytest.raises(ProtocolError) as e:
        await b.call("document:show", {"document": doc["id"]})
    assert e.value.error["code"] == "forbidden"
