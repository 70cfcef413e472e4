"""Envelope keys for recordings.

Every recording gets a fresh random 32-byte data key. It is never stored in the clear: the database holds it
wrapped (AES-256-GCM) by a center master key from the `KeyRing`, whose id is stored next to the wrap, and,
once the case goes to a court, also wrapped to that court's X25519 public key.

The wrap formats (master and court) are in `recordings.keywrap` (pure; the court's offline verifier uses its
`court_unwrap()`). `rotate()` re-wraps every master wrap under the current master key without touching media;
`retention.expire()` destroys the wraps.
"""

from __future__ import annotations

import logging
import secrets

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PublicKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.db import Database
from mediation.errors import Expired, InvalidInput, NotFound
from mediation.keyring import KeyRing
from mediation.recording_records import Recording, RecordingKeyWrap
from recordings.keywrap import (
    DATA_KEY_LEN,
    court_unwrap,  # noqa: F401 (re-exported: tests call keys.court_unwrap)
    court_wrap,
    master_unwrap,
    master_wrap,
)

log = logging.getLogger(__name__)


def new_data_key() -> bytes:
    return secrets.token_bytes(DATA_KEY_LEN)


def new_key_id() -> str:
    return "dk-" + secrets.token_hex(8)


async def create_data_key(s: AsyncSession, keyring: KeyRing, recording_id: str) -> bytes:
    """Make a fresh data key for a new recording and store it wrapped by the current master key."""
    dk = new_data_key()
    mid = keyring.current_master_id
    s.add(
        RecordingKeyWrap(
            recording_id=recording_id,
            kind="master",
            key_ref=mid,
            blob=master_wrap(keyring.master_keys[mid], mid, recording_id, dk),
        )
    )
    await s.flush()
    return dk


async def load_data_key(s: AsyncSession, keyring: KeyRing, recording_id: str) -> bytes:
    rec = await s.get(Recording, recording_id)
    if rec is None:
        raise NotFound("no such recording", recording=recording_id)
    if rec.keys_destroyed_at is not None:
        raise Expired("the recording's keys were destroyed (retention)", recording=recording_id)
    q = select(RecordingKeyWrap).where(
        RecordingKeyWrap.recording_id == recording_id, RecordingKeyWrap.kind == "master"
    )
    for wrap in (await s.scalars(q)).all():
        if wrap.key_ref in keyring.master_keys:
            return master_unwrap(keyring.master_keys[wrap.key_ref], wrap.key_ref, recording_id, wrap.blob)
    raise NotFound("no usable master key for this recording", recording=recording_id)


async def rotate(db: Database, keyring: KeyRing, *, actor: str, reason: str = "master key rotation") -> int:
    """Re-wrap every data key under the keyring's current master key; media is not touched.

    Typical use (`onedoor keys rotate`): `keyring.add_master_key()`, then `rotate(...)`, then
    `keyring.drop_master_key(old_id)` once this returned. Returns the number of keys re-wrapped.
    """
    new_id = keyring.current_master_id
    new_key = keyring.master_keys[new_id]
    count = 0
    async with db.session() as s:
        q = select(RecordingKeyWrap).where(
            RecordingKeyWrap.kind == "master", RecordingKeyWrap.key_ref != new_id
        )
        for wrap in (await s.scalars(q)).all():
            old = keyring.master_keys.get(wrap.key_ref)
            if old is None:
                raise NotFound(
                    "a data key is wrapped by a master key that is not in the keyring",
                    recording=wrap.recording_id,
                    master_key=wrap.key_ref,
                )
            dk = master_unwrap(old, wrap.key_ref, wrap.recording_id, wrap.blob)
            wrap.blob = master_wrap(new_key, new_id, wrap.recording_id, dk)
            wrap.key_ref = new_id
            count += 1
        await audit.append(
            s,
            actor=actor,
            action="recording.keys_rotated",
            subject="keyring",
            detail={"master_key": new_id, "rewrapped": count},
            reason=reason,
        )
    log.info("re-wrapped %d recording keys under %s", count, new_id)
    return count


async def add_court_wrap(
    db: Database,
    keyring: KeyRing,
    recording_id: str,
    court_id: str,
    court_public: X25519PublicKey | bytes,
    *,
    actor: str,
    reason: str,
) -> bytes:
    """Wrap the recording's data key to a court's X25519 key (when the case is sent to that court)."""
    if not court_id:
        raise InvalidInput("court id required")
    async with db.session() as s:
        dk = await load_data_key(s, keyring, recording_id)
        blob = court_wrap(court_public, recording_id, dk)
        q = select(RecordingKeyWrap).where(
            RecordingKeyWrap.recording_id == recording_id,
            RecordingKeyWrap.kind == "court",
            RecordingKeyWrap.key_ref == court_id,
        )
        existing = (await s.scalars(q)).one_or_none()
        if existing is None:
            s.add(RecordingKeyWrap(recording_id=recording_id, kind="court", key_ref=court_id, blob=blob))
        else:
            existing.blob = blob
        await audit.append(
            s,
            actor=actor,
            action="recording.court_wrap",
            subject=f"recording:{recording_id}",
            detail={"court": court_id},
            reason=reason,
        )
    return blob


async def court_wrap_blob(db: Database, recording_id: str, court_id: str) -> bytes:
    async with db.session() as s:
        q = select(RecordingKeyWrap.blob).where(
            RecordingKeyWrap.recording_id == recording_id,
            RecordingKeyWrap.kind == "court",
            RecordingKeyWrap.key_ref == court_id,
        )
        blob = (await s.scalars(q)).one_or_none()
    if blob is None:
        raise NotFound("no key wrap for this court", recording=recording_id, court=court_id)
    return blob
