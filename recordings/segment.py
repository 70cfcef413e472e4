"""The encrypted recording segment format (pure: no I/O, no clock).

One *stream* (one Matroska file of one recorded source) is stored as::

    stream  = header || frame_0 || frame_1 || ... || frame_n
    header  = MAGIC(6) || version(1) || field(recording_id) || field(stream_id) || field(session_id)
              || field(key_id) || nonce_prefix(7)            where field(x) = len(u8) || utf-8 bytes
    frame_k = len(u32 big-endian) || AES-256-GCM(stream_key, nonce_k, plaintext_k, aad=header)
    nonce_k = nonce_prefix(7) || k(u32 big-endian) || last(1: 0x01 on the final segment, else 0x00)

This is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár 2015) as used by Tink's streaming AEAD
and age: the position and the "last" flag are inside the nonce, so moving, dropping, duplicating or cutting
segments makes authentication fail at the first segment out of place, and a stream is complete only when a
segment sealed with last=1 authenticates and nothing follows it.
The header is the associated data of every segment.

`stream_key = HKDF-SHA256(data_key, salt=nonce_prefix, info="onedoor-rec-v1/segment-key" || header)`: every
stream of a recording gets its own key although the recording has one data key, so nonces can never collide
across streams, and the key is bound to the header. `key_id` names the recording's data key (not the master
key: rotating the master key re-wraps the data key and leaves every stored byte as it is).

Plaintext segments are at most 1 MiB (`MAX_PLAINTEXT`). Segment hashes (audit log, manifest) are SHA-256 over
the whole stored frame (length prefix + ciphertext), so anyone can check stored bytes without the key.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from mediation.errors import IntegrityError, InvalidInput

MAGIC = b"ODREC\x1a"
FORMAT_VERSION = 1
NONCE_PREFIX_LEN = 7
TAG_LEN = 16
LEN_PREFIX = 4
MAX_PLAINTEXT = 1 << 20
MAX_COUNTER = 0xFFFFFFFF
_KDF_INFO = b"onedoor-rec-v1/segment-key"
_DIAG_WINDOW = 8


@dataclass(frozen=True)
class Header:
    recording_id: str
    stream_id: str
    session_id: str
    key_id: str
    nonce_prefix: bytes
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if len(self.nonce_prefix) != NONCE_PREFIX_LEN:
            raise InvalidInput("nonce prefix must be 7 bytes")
        for name in ("recording_id", "stream_id", "session_id", "key_id"):
            if len(getattr(self, name).encode()) > 255:
                raise InvalidInput(f"{name} longer than 255 bytes")

    def to_bytes(self) -> bytes:
        out = bytearray(MAGIC)
        out.append(self.version)
        for value in (self.recording_id, self.stream_id, self.session_id, self.key_id):
            raw = value.encode()
            out.append(len(raw))
            out += raw
        out += self.nonce_prefix
        return bytes(out)

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> tuple[Header, int]:
        """Parse a header at the start of `data`; return it and its length in bytes."""
        buf = bytes(data[: len(MAGIC) + 1 + 4 * 256 + NONCE_PREFIX_LEN])
        if len(buf) < len(MAGIC) + 1 or buf[: len(MAGIC)] != MAGIC:
            raise IntegrityError("not a OneDoor recording stream (bad magic)", segment=0)
        if buf[len(MAGIC)] != FORMAT_VERSION:
            raise IntegrityError(f"unsupported recording format version {buf[len(MAGIC)]}", segment=0)
        pos = len(MAGIC) + 1
        fields: list[str] = []
        for _ in range(4):
            if pos >= len(buf) or pos + 1 + buf[pos] > len(buf):
                raise IntegrityError("recording header truncated", segment=0)
            n = buf[pos]
            try:
                fields.append(buf[pos + 1 : pos + 1 + n].decode())
            except UnicodeDecodeError as e:
                raise IntegrityError("recording header corrupt", segment=0) from e
            pos += 1 + n
        if pos + NONCE_PREFIX_LEN > len(buf):
            raise IntegrityError("recording header truncated", segment=0)
        prefix = buf[pos : pos + NONCE_PREFIX_LEN]
        return cls(fields[0], fields[1], fields[2], fields[3], prefix), pos + NONCE_PREFIX_LEN


def stream_key(data_key: bytes, header: Header) -> bytes:
    if len(data_key) != 32:
        raise InvalidInput("data key must be 32 bytes")
    kdf = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=header.nonce_prefix, info=_KDF_INFO + header.to_bytes()
    )
    return kdf.derive(data_key)


def nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if not 0 <= counter <= MAX_COUNTER:
        raise InvalidInput("segment counter out of range")
    return prefix + counter.to_bytes(4, "big") + (b"\x01" if last else b"\x00")


def frame_sha256(frame: bytes | bytearray) -> str:
    return hashlib.sha256(frame).hexdigest()


class SegmentSealer:
    """Seals the segments of one stream in order. Not thread-safe; one sealer per stream."""

    def __init__(self, data_key: bytes, header: Header) -> None:
        self.header = header
        self.header_bytes = header.to_bytes()
        self._aead = AESGCM(stream_key(data_key, header))
        self.counter = 0
        self.finished = False

    def seal(self, plaintext: bytes, *, last: bool = False) -> bytearray:
        """Return the frame (length prefix + ciphertext) for the next segment (a bytearray, sealed in place)."""
        if self.finished:
            raise IntegrityError("stream already finished")
        if len(plaintext) > MAX_PLAINTEXT:
            raise InvalidInput("segment larger than 1 MiB")
        frame = bytearray(LEN_PREFIX + len(plaintext) + TAG_LEN)
        struct.pack_into(">I", frame, 0, len(plaintext) + TAG_LEN)
        n = nonce(self.header.nonce_prefix, self.counter, last)
        self._aead.encrypt_into(n, plaintext, self.header_bytes, memoryview(frame)[LEN_PREFIX:])
        self.counter += 1
        self.finished = last
        return frame


@dataclass
class ReadStatus:
    """Outcome of reading a stream. `segments` counts segments that authenticated, in order, from 0."""

    complete: bool = False
    segments: int = 0
    kind: str = "truncated"  # "complete" | "truncated" | "corrupt"
    failed_at: int | None = None
    problem: str | None = None
    frame_hashes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        if self.complete:
            return f"complete ({self.segments} segments)"
        return f"{self.kind} at segment {self.failed_at}: {self.problem}"


class SegmentOpener:
    """Incremental reader: `feed()` bytes as they come, collect plaintexts, then `finish()`.

    Stops at the first problem; the plaintexts returned before it are authentic and in order.
    """

    def __init__(self, data_key: bytes, header: Header) -> None:
        self.header = header
        self._aad = header.to_bytes()
        self._aead = AESGCM(stream_key(data_key, header))
        self._buf = bytearray()
        self.status = ReadStatus()
        self._done = False

    def feed(self, data: bytes) -> list[bytes]:
        if self._done:
            if data and self.status.complete:
                self._fail("corrupt", self.status.segments, "data after the final segment")
            return []
        self._buf += data
        out: list[bytes] = []
        while not self._done and len(self._buf) >= LEN_PREFIX:
            k = self.status.segments
            (n,) = struct.unpack_from(">I", self._buf)
            if n < TAG_LEN or n > MAX_PLAINTEXT + TAG_LEN:
                self._fail("corrupt", k, f"impossible segment length {n}")
                break
            if len(self._buf) < LEN_PREFIX + n:
                break
            frame = bytes(self._buf[: LEN_PREFIX + n])
            del self._buf[: LEN_PREFIX + n]
            pt, last = self._open(k, frame[LEN_PREFIX:])
            if pt is None:
                break
            self.status.segments += 1
            self.status.frame_hashes.append(frame_sha256(frame))
            out.append(pt)
            if last:
                self._done = True
                self.status.complete = True
                self.status.kind = "complete"
                if self._buf:
                    self._fail("corrupt", k + 1, "data after the final segment")
        return out

    def finish(self) -> ReadStatus:
        if not self._done:
            k = self.status.segments
            what = "partial segment at the end" if self._buf else "no final segment"
            self._fail("truncated", k, what)
        return self.status

    def _open(self, k: int, ct: bytes) -> tuple[bytes | None, bool]:
        for last in (False, True):
            try:
                return self._aead.decrypt(nonce(self.header.nonce_prefix, k, last), ct, self._aad), last
            except InvalidTag:
                continue
        self._fail("corrupt", k, self._diagnose(k, ct))
        return None, False

    def _diagnose(self, k: int, ct: bytes) -> str:
        for j in range(max(0, k - _DIAG_WINDOW), k + _DIAG_WINDOW):
            if j == k:
                continue
            for last in (False, True):
                try:
                    self._aead.decrypt(nonce(self.header.nonce_prefix, j, last), ct, self._aad)
                except InvalidTag:
                    continue
                if j < k:
                    return f"segment {j} found again at position {k} (duplicated or reordered)"
                return f"segment {j} found at position {k} (segments {k}..{j - 1} dropped or reordered)"
        return "authentication failed (modified, corrupt or from another stream)"

    def _fail(self, kind: str, k: int, problem: str) -> None:
        self._done = True
        self.status.complete = False
        self.status.kind = kind
        self.status.failed_at = k
        self.status.problem = problem


def open_stream(
    data_key: bytes, data: bytes, expected: Header | None = None
) -> tuple[Header, list[bytes], ReadStatus]:
    """Read a whole stream held in memory. Header problems raise `IntegrityError`."""
    header, hlen = Header.parse(data)
    check_header(header, expected)
    opener = SegmentOpener(data_key, header)
    plaintexts = opener.feed(bytes(data[hlen:]))
    return header, plaintexts, opener.finish()


def check_header(header: Header, expected: Header | None) -> None:
    if expected is not None and header != expected:
        raise IntegrityError("stream header does not match the recording's records", segment=0)


def walk_frames(data: bytes) -> tuple[Header, Iterator[bytes]]:
    """Walk stored frames without the key (for hash checks). Stops at a partial frame."""
    header, pos = Header.parse(data)

    def frames() -> Iterator[bytes]:
        p = pos
        while p + LEN_PREFIX <= len(data):
            (n,) = struct.unpack_from(">I", data, p)
            if p + LEN_PREFIX + n > len(data):
                return
            yield bytes(data[p : p + LEN_PREFIX + n])
            p += LEN_PREFIX + n

    return header, frames()
