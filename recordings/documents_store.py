"""The case file's documents at rest, encrypted exactly like recordings (issue 13 item 1).

Every document gets a fresh 32-byte data key, stored only wrapped: by the center's current master key (kind
"master", `recordings.keywrap.master_wrap` with the document id where a recording id would be) and, once the case
goes to a court, to that court's X25519 key (`court_wrap`). The bytes are one stream of the recording segment
format (`recordings.segment`: STREAM construction, AES-256-GCM, segments of at most 1 MiB, the last one flagged)
with header (recording_id = document id, stream_id = "content", session_id = case code, key_id = document id),
stored as the object `<document id>/content.odr` of a storage backend rooted apart from the recordings.

Before sealing, images are re-encoded (Pillow) so that nothing but pixels is kept: EXIF (GPS position, device,
time), XMP, ICC profiles and comments are dropped; the EXIF orientation is applied first so the picture stands as
it was taken. PDFs are stored as uploaded and never parsed, rendered or executed here (the type was sniffed from
its first bytes by `mediation.documents.sniff`). All CPU work runs in worker threads.
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import secrets

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.agreements.bundle import DocumentPart
from mediation.agreements.courts import CourtDirectory
from mediation.canonical import sha256_hex
from mediation.casefile_records import CaseDocument, DocumentKeyWrap
from mediation.db import Database
from mediation.documents import IMAGE_TYPES, Sealed, case_documents, court_documents, public
from mediation.errors import Expired, IntegrityError, InvalidInput, NotFound
from mediation.keyring import KeyRing
from mediation.models import Case
from recordings.keywrap import DATA_KEY_LEN, court_wrap, master_unwrap, master_wrap
from recordings.segment import MAX_PLAINTEXT, NONCE_PREFIX_LEN, Header, SegmentSealer, open_stream
from recordings.storage import RecordingStorage

log = logging.getLogger(__name__)
OBJECT = "content.odr"
MAX_PIXELS = 40_000_000  # a decompression bomb is refused, not decoded


def sanitize_image(data: bytes, media_type: str) -> bytes:
    """Decode and re-encode: only the pixels survive (no EXIF/GPS, XMP, ICC, comments). Synchronous: run it in a
    worker thread."""
    fmt = {"image/jpeg": "JPEG", "image/png": "PNG"}[media_type]
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as im:
            if im.width * im.height > MAX_PIXELS:
                raise InvalidInput("图片像素过多 / the picture is too large", code="too_large")
            im.load()
            upright = ImageOps.exif_transpose(im) or im
            mode = "RGB" if fmt == "JPEG" else ("RGBA" if "A" in upright.getbands() else "RGB")
            clean = Image.new(mode, upright.size)
            clean.paste(upright.convert(mode))
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as e:
        raise InvalidInput("图片无法读取 / the picture cannot be read", code="bad_document") from e
    out = io.BytesIO()
    if fmt == "JPEG":
        clean.save(out, "JPEG", quality=90)
    else:
        clean.save(out, "PNG", optimize=False)
    return out.getvalue()


def seal(data_key: bytes, doc_id: str, case_code: str, plaintext: bytes) -> bytes:
    header = Header(recording_id=doc_id, stream_id="content", session_id=case_code, key_id=doc_id,
                    nonce_prefix=secrets.token_bytes(NONCE_PREFIX_LEN))
    sealer = SegmentSealer(data_key, header)
    out = bytearray(sealer.header_bytes)
    chunks = [plaintext[i:i + MAX_PLAINTEXT] for i in range(0, len(plaintext), MAX_PLAINTEXT)] or [b""]
    for i, chunk in enumerate(chunks):
        out += sealer.seal(chunk, last=i == len(chunks) - 1)
    return bytes(out)


def unseal(data_key: bytes, doc_id: str, stored: bytes) -> bytes:
    """Decrypt and authenticate a whole document stream (also what a court does offline with the bundle)."""
    header, parts, status = open_stream(data_key, stored)
    if header.recording_id != doc_id or not status.complete:
        raise IntegrityError("document stream does not authenticate", document=doc_id)
    return b"".join(parts)


class DocumentStore:
    """mediation.documents.DocumentVault over a storage backend and the center's key ring."""

    def __init__(self, keys: KeyRing, storage: RecordingStorage) -> None:
        self.keys, self.storage = keys, storage

    async def put(self, s: AsyncSession, doc_id: str, case_code: str, media_type: str, data: bytes) -> Sealed:
        """Sanitise (images), encrypt with a fresh data key, store, and add the master wrap to `s`."""
        clean = await asyncio.to_thread(sanitize_image, data, media_type) if media_type in IMAGE_TYPES else data
        dk = secrets.token_bytes(DATA_KEY_LEN)
        stored = await asyncio.to_thread(seal, dk, doc_id, case_code, clean)
        mid = self.keys.current_master_id
        s.add(DocumentKeyWrap(document_id=doc_id, kind="master", key_ref=mid,
                              blob=master_wrap(self.keys.master_keys[mid], mid, doc_id, dk)))
        await self.storage.put_object(doc_id, OBJECT, stored)
        return Sealed(sha256=sha256_hex(clean), size=len(clean), stored_sha256=sha256_hex(stored))

    async def _data_key(self, s: AsyncSession, doc: CaseDocument) -> bytes:
        if doc.keys_destroyed_at is not None:
            raise Expired("the document's keys were destroyed (retention)", document=doc.id)
        q = select(DocumentKeyWrap).where(DocumentKeyWrap.document_id == doc.id, DocumentKeyWrap.kind == "master")
        for wrap in (await s.scalars(q)).all():
            if wrap.key_ref in self.keys.master_keys:
                return master_unwrap(self.keys.master_keys[wrap.key_ref], wrap.key_ref, doc.id, wrap.blob)
        raise NotFound("no usable master key for this document", document=doc.id)

    async def get(self, s: AsyncSession, doc: CaseDocument) -> bytes:
        stored = await self.encrypted(doc.id)
        return await asyncio.to_thread(unseal, await self._data_key(s, doc), doc.id, stored)

    async def encrypted(self, doc_id: str) -> bytes:
        stored = await self.storage.get_object(doc_id, OBJECT)
        if stored is None:
            raise NotFound("the document's content is missing", code="document_not_found")
        return stored

    async def court_wrap(self, s: AsyncSession, doc: CaseDocument, court_id: str, court_public_b64: str) -> bytes:
        """The data key wrapped to a court's X25519 key (made once per document and court)."""
        q = select(DocumentKeyWrap).where(DocumentKeyWrap.document_id == doc.id, DocumentKeyWrap.kind == "court",
                                          DocumentKeyWrap.key_ref == court_id)
        existing = (await s.scalars(q)).one_or_none()
        if existing is not None:
            return existing.blob
        blob = court_wrap(base64.b64decode(court_public_b64), doc.id, await self._data_key(s, doc))
        s.add(DocumentKeyWrap(document_id=doc.id, kind="court", key_ref=court_id, blob=blob))
        await s.flush()
        return blob


class CourtDocuments:
    """The case file's court-bound documents (never privileged caucus material, R9): their keys wrapped to the
    court when the case is sent there, and the parts an evidence bundle carries."""

    def __init__(self, db: Database, store: DocumentStore, courts: CourtDirectory) -> None:
        self.db, self.store, self.courts = db, store, courts

    async def wrap_case(self, case_code: str, court_id: str) -> list[str]:
        done = []
        async with self.db.session() as s:
            court = await self.courts.lookup(s, court_id)
            case = await s.scalar(select(Case).where(Case.code == case_code))
            if case is None:
                return []
            for doc in court_documents(await case_documents(s, case.id)):
                await self.store.court_wrap(s, doc, court_id, court.recording_public_key)
                done.append(doc.id)
            if done:
                await audit.append(s, actor="system", action="document.court_wrap", subject=f"case:{case_code}",
                                   detail={"court": court_id, "documents": done})
        return done

    async def parts(self, case_code: str, court_id: str) -> list[DocumentPart]:
        await self.wrap_case(case_code, court_id)
        court = self.courts.get(court_id)
        out = []
        async with self.db.session() as s:
            case = await s.scalar(select(Case).where(Case.code == case_code))
            for doc in court_documents(await case_documents(s, case.id)) if case else []:
                blob = await self.store.court_wrap(s, doc, court_id, court.recording_public_key)
                out.append(DocumentPart(meta=public(doc), stored=await self.store.encrypted(doc.id), wrapped_key=blob))
        return out
