"""Reading recordings back: decrypting streams from storage, and the audited door to the data key.

Every use of a recording's plaintext goes through `authorize_read()`, which writes the audit entry (who, what,
why) in the same transaction that unwraps the data key: no key without a log line. The permission decision
itself (may this user export this case's recording?) is the caller's, against the permission table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from mediation import audit
from mediation.db import Database
from mediation.errors import InvalidInput
from mediation.keyring import KeyRing
from recordings import keys
from recordings.segment import Header, ReadStatus, SegmentOpener, check_header
from recordings.storage import RecordingStorage


async def authorize_read(
    db: Database,
    keyring: KeyRing,
    recording_id: str,
    *,
    actor: str,
    reason: str,
    action: str = "recording.read",
    detail: dict[str, Any] | None = None,
) -> bytes:
    """Log the read and return the recording's data key. `actor` and `reason` are mandatory (R10, R14)."""
    if not actor or not reason:
        raise InvalidInput("reading a recording needs an actor and a reason")
    async with db.session() as s:
        dk = await keys.load_data_key(s, keyring, recording_id)
        await audit.append(
            s,
            actor=actor,
            action=action,
            subject=f"recording:{recording_id}",
            detail=detail or {},
            reason=reason,
        )
    return dk


class DecryptedStream:
    """Async iterator over the authentic plaintext segments of one stored stream, in order.

    Iteration stops at the first problem; `status` then says complete / truncated at k / corrupt at k.
    """

    def __init__(
        self,
        storage: RecordingStorage,
        data_key: bytes,
        recording_id: str,
        stream_id: str,
        expected: Header | None = None,
    ) -> None:
        self._storage, self._key = storage, data_key
        self.recording_id, self.stream_id, self._expected = recording_id, stream_id, expected
        self.header: Header | None = None
        self.status = ReadStatus()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        buf = bytearray()
        opener: SegmentOpener | None = None
        async for chunk in self._storage.read_stream(self.recording_id, self.stream_id):
            if opener is None:
                buf += chunk
                try:
                    self.header, hlen = Header.parse(buf)
                except Exception:
                    if len(buf) < 4096:
                        continue
                    raise
                check_header(self.header, self._expected)
                opener = SegmentOpener(self._key, self.header)
                chunk = bytes(buf[hlen:])
            for pt in opener.feed(chunk):
                yield pt
            if opener.status.failed_at is not None:
                break
        if opener is None:
            self.header, _ = Header.parse(buf)  # raises the right IntegrityError
            raise AssertionError("unreachable")
        self.status = opener.finish()


async def verify_stream(
    storage: RecordingStorage, data_key: bytes, recording_id: str, stream_id: str
) -> ReadStatus:
    stream = DecryptedStream(storage, data_key, recording_id, stream_id)
    async for _ in stream:
        pass
    return stream.status
