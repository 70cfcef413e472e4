"""Recordings that go to a court (R9, R23): which ones, their data keys wrapped to the court, and the parts an
evidence bundle carries. Caucus recordings are privileged and never leave the center (R9)."""

from __future__ import annotations

import base64
import logging

from sqlalchemy import select

from mediation.agreements.bundle import RecordingPart
from mediation.agreements.courts import CourtDirectory
from mediation.db import Database
from mediation.errors import Expired, NotFound
from mediation.keyring import KeyRing
from mediation.recording_records import Recording, RecordingStream, court_bound
from recordings import keys as rec_keys
from recordings.storage import RecordingStorage

log = logging.getLogger(__name__)


class CourtShare:
    """mediation.notices.CourtKeys, and the bundle's recording parts."""

    def __init__(self, db: Database, keys: KeyRing, storage: RecordingStorage, courts: CourtDirectory) -> None:
        self.db, self.keys, self.storage, self.courts = db, keys, storage, courts

    async def wrap_case(self, case_code: str, court_id: str, *, actor: str) -> list[str]:
        """Wrap every court-bound recording's data key to the court's X25519 key (once per recording and court)."""
        async with self.db.session() as s:
            court = await self.courts.lookup(s, court_id)
            recs = [r.id for r in await court_bound(s, case_code)]
        done = []
        for rid in recs:
            try:
                await rec_keys.court_wrap_blob(self.db, rid, court_id)
            except NotFound:
                try:
                    await rec_keys.add_court_wrap(
                        self.db, self.keys, rid, court_id, base64.b64decode(court.recording_public_key), actor=actor,
                        reason=f"case {case_code} sent to {court.name} for judicial confirmation")
                except (NotFound, Expired) as e:
                    log.warning("recording %s cannot be wrapped for %s: %s", rid, court_id, e)
                    continue
            done.append(rid)
        return done

    async def parts(self, case_code: str, court_id: str, *, actor: str) -> list[RecordingPart]:
        """Each recording as the bundle carries it: signed manifest, encrypted streams, key wrapped to the court."""
        parts = []
        for rid in await self.wrap_case(case_code, court_id, actor=actor):
            async with self.db.session() as s:
                rec = await s.get(Recording, rid)
                streams = (await s.scalars(select(RecordingStream.stream_id)
                                           .where(RecordingStream.recording_id == rid)
                                           .order_by(RecordingStream.id))).all()
            manifest = await self.storage.get_object(rid, "manifest.json")
            if manifest is None and rec is not None and rec.manifest:
                manifest = rec.manifest.encode()
            if manifest is None:
                log.warning("recording %s has no manifest; left out of the bundle", rid)
                continue
            files: dict[str, bytes] = {}
            for sid in streams:
                files[f"{sid}.odr"] = b"".join([c async for c in self.storage.read_stream(rid, sid)])
            parts.append(RecordingPart(manifest=manifest, files=files,
                                       wrapped_key=await rec_keys.court_wrap_blob(self.db, rid, court_id),
                                       recording_id=rid))
        return parts
