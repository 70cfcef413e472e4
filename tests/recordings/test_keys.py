"""Envelope keys: master wrap, rotation, court wrap (ECIES), retention with legal hold."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from sqlalchemy import select

from mediation import audit
from mediation.db import Database, utcnow
from mediation.errors import Expired, IntegrityError
from mediation.keyring import KeyRing
from mediation.recording_records import Recording, RecordingKeyWrap
from recordings import keys, retention
from recordings.storage import LocalStorage


async def make_recording(db: Database, keyring: KeyRing, rid: str, **kw: object) -> bytes:
    async with db.session() as s:
        s.add(
            Recording(
                id=rid,
                session_id="sess",
                case_code="QH-HX-2026-000123",
                data_key_id="dk-x",
                status=kw.pop("status", "stopped"),
                **kw,
            )
        )
        await s.flush()
        return await keys.create_data_key(s, keyring, rid)


def test_master_wrap_round_trip_and_binding() -> None:
    mk, dk = bytes(range(32)), keys.new_data_key()
    blob = keys.master_wrap(mk, "mk-1", "rec-1", dk)
    assert dk not in blob and keys.master_unwrap(mk, "mk-1", "rec-1", blob) == dk
    with pytest.raises(IntegrityError):
        keys.master_unwrap(mk, "mk-1", "rec-2", blob)  # bound to the recording
    with pytest.raises(IntegrityError):
        keys.master_unwrap(mk, "mk-2", "rec-1", blob)  # bound to the master key id


def test_court_wrap_round_trip() -> None:
    court = X25519PrivateKey.generate()
    dk = keys.new_data_key()
    blob = keys.court_wrap(court.public_key(), "rec-1", dk)
    assert keys.court_unwrap(court, "rec-1", blob) == dk
    assert keys.court_wrap(court.public_key(), "rec-1", dk) != blob  # fresh ephemeral key every time
    with pytest.raises(IntegrityError):
        keys.court_unwrap(X25519PrivateKey.generate(), "rec-1", blob)
    with pytest.raises(IntegrityError):
        keys.court_unwrap(court, "rec-2", blob)


async def test_rotate_rewraps_without_touching_data(db: Database, keyring: KeyRing) -> None:
    dk1 = await make_recording(db, keyring, "rec-1")
    dk2 = await make_recording(db, keyring, "rec-2")
    old = keyring.current_master_id
    new = keyring.add_master_key()
    assert await keys.rotate(db, keyring, actor="admin") == 2
    keyring.drop_master_key(old)
    async with db.session() as s:
        refs = (await s.scalars(select(RecordingKeyWrap.key_ref))).all()
        assert set(refs) == {new}
        assert await keys.load_data_key(s, keyring, "rec-1") == dk1
        assert await keys.load_data_key(s, keyring, "rec-2") == dk2
        entries = await audit.entries_for(s, "keyring")
        assert entries[-1].action == "recording.keys_rotated"
    assert await keys.rotate(db, keyring, actor="admin") == 0
    reloaded = KeyRing.load_or_create(keyring.key_dir)
    async with db.session() as s:
        assert await keys.load_data_key(s, reloaded, "rec-1") == dk1


async def test_court_wrap_stored_and_audited(db: Database, keyring: KeyRing) -> None:
    dk = await make_recording(db, keyring, "rec-1")
    court = X25519PrivateKey.generate()
    await keys.add_court_wrap(
        db, keyring, "rec-1", "court-xining", court.public_key(), actor="clerk", reason="sent"
    )
    blob = await keys.court_wrap_blob(db, "rec-1", "court-xining")
    assert keys.court_unwrap(court, "rec-1", blob) == dk
    async with db.session() as s:
        assert (await audit.entries_for(s, "recording:rec-1"))[-1].action == "recording.court_wrap"


async def test_retention_expiry_respects_legal_hold(
    db: Database, keyring: KeyRing, storage: LocalStorage
) -> None:
    old = utcnow() - dt.timedelta(days=40)
    for rid in ("rec-old", "rec-held", "rec-new"):
        await make_recording(
            db, keyring, rid, started_at=old, stopped_at=old if rid != "rec-new" else utcnow()
        )
        await storage.create_stream(rid, "s.0", b"header")
    await make_recording(
        db, keyring, "rec-other", record_type="agreement_video", started_at=old, stopped_at=old
    )
    await retention.set_retention(db, "mediation_recording", 30, actor="admin", reason="center policy")
    await retention.set_legal_hold(db, "rec-held", True, actor="judge", reason="appeal pending")

    assert await retention.expire(db, actor="retention", storage=storage) == ["rec-old"]
    async with db.session() as s:
        rec = await s.get(Recording, "rec-old")
        assert rec is not None and rec.status == "destroyed" and rec.keys_destroyed_at is not None
        wraps = (
            await s.scalars(select(RecordingKeyWrap).where(RecordingKeyWrap.recording_id == "rec-old"))
        ).all()
        assert wraps == []
        with pytest.raises(Expired):
            await keys.load_data_key(s, keyring, "rec-old")
        assert len(await keys.load_data_key(s, keyring, "rec-held")) == 32
        assert (await audit.entries_for(s, "recording:rec-old"))[-1].action == "recording.keys_destroyed"
    assert await storage.list_streams("rec-old") == []
    assert await storage.list_streams("rec-held") == ["s.0"]

    await retention.set_legal_hold(db, "rec-held", False, actor="judge", reason="case closed")
    assert await retention.expire(db, actor="retention") == ["rec-held"]
    assert await retention.expire(db, actor="retention", now=utcnow() + dt.timedelta(days=31)) == ["rec-new"]
    async with db.session() as s:
        assert (await audit.verify(s)).ok
