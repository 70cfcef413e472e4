"""Decrypting a stored stream (no database): an async iterator over its authentic plaintext segments.

Reads through `StreamSource` (the read side of `recordings.storage.RecordingStorage`), so the same reader serves
the server's storage and a court's bundle (`signaling.cli_verify`). Getting the data key is the caller's business
(`recordings.reader` audits it).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

from recordings.segment import Header, ReadStatus, SegmentOpener, check_header


class StreamSource(Protocol):
    """Where stored stream bytes come from; every `RecordingStorage` is one."""

    def read_stream(self, recording_id: str, stream_id: str) -> AsyncIterator[bytes]: ...


class DecryptedStream:
    """Async iterator over the authentic plaintext segments of one stored stream, in order.

    Iteration stops at the first problem; `status` then says complete / truncated at k / corrupt at k.
    """

    def __init__(
        self,
        storage: StreamSource,
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
    storage: StreamSource, data_key: bytes, recording_id: str, stream_id: str
) -> ReadStatus:
    stream = DecryptedStream(storage, data_key, recording_id, stream_id)
    async for _ in stream:
        pass
    return stream.status
