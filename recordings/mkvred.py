"""Stored RED audio back to Opus inside a recorded Matroska stream, on the way from the decrypting reader to ffmpeg.

FFmpeg has no RED decoder, and the recorder stores audio as received (recordings/red.py: a RED payload is kept
with a prefix no Opus packet has). `OpusFromRed` rewrites the Matroska byte stream our muxer writes
(recordings/muxer.py: EBML header, a Segment of unknown size, its head elements, then Clusters of known size, each
starting with a CRC-32): in each Cluster, every SimpleBlock (or BlockGroup's Block: the muxer writes Opus packets
in BlockGroups) of an Opus track goes through a `RedUnwrapper`
(primary blocks, lost packets put back from redundancy); a Cluster with no stored RED packet is passed on byte for
byte, a rewritten one gets its size and CRC-32 recomputed. Anything it does not understand (an unknown-size
Cluster, laced blocks, a Segment of known size) is passed on unchanged from there on: the export then plays as
it did before this filter existed. Memory: at most one Cluster (the muxer caps them at ~1 s / 512 KiB).

`RedUnwrappedStream` is a `DecryptedStream` whose plaintext goes through the filter (recordings/export.py).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import AsyncIterator

from recordings.decrypt import DecryptedStream
from recordings.red import STORED_RED, RedUnwrapper

log = logging.getLogger(__name__)

SEGMENT, CLUSTER, TRACKS, TRACK_ENTRY = 0x18538067, 0x1F43B675, 0x1654AE6B, 0xAE
TRACK_NUMBER, CODEC_ID, CRC32 = 0xD7, 0x86, 0xBF
CLUSTER_TIMESTAMP, SIMPLE_BLOCK, BLOCK_GROUP, BLOCK = 0xE7, 0xA3, 0xA0, 0xA1
UNKNOWN = -1


def _read_id(buf: bytes | bytearray, i: int) -> tuple[int, int] | None:
    """(element id with its marker bits, next index), None if incomplete; ValueError if invalid."""
    if i >= len(buf):
        return None
    first = buf[i]
    if not first:
        raise ValueError("invalid EBML id")
    n = 8 - first.bit_length() + 1
    if n > 4:
        raise ValueError("invalid EBML id")
    if i + n > len(buf):
        return None
    return int.from_bytes(buf[i : i + n], "big"), i + n


def _read_size(buf: bytes | bytearray, i: int) -> tuple[int, int] | None:
    """(data size or UNKNOWN, next index), None if incomplete; ValueError if invalid."""
    if i >= len(buf):
        return None
    first = buf[i]
    if not first:
        raise ValueError("invalid EBML size")
    n = 8 - first.bit_length() + 1
    if i + n > len(buf):
        return None
    value = first & (0xFF >> n)
    for k in range(1, n):
        value = (value << 8) | buf[i + k]
    return (UNKNOWN if value == (1 << (7 * n)) - 1 else value), i + n


def _size(value: int) -> bytes:
    """The shortest EBML size encoding of `value` (never the all-ones 'unknown')."""
    for n in range(1, 9):
        if value < (1 << (7 * n)) - 1:
            return ((1 << (7 * n)) | value).to_bytes(n, "big")
    raise ValueError("EBML size too large")


def _element(eid: int, data: bytes) -> bytes:
    return eid.to_bytes((eid.bit_length() + 7) // 8, "big") + _size(len(data)) + data


def _children(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """(id, whole element bytes, its data) for each child of a master element's data; ValueError if broken."""
    out = []
    i = 0
    while i < len(data):
        head = _read_id(data, i)
        size = None if head is None else _read_size(data, head[1])
        if head is None or size is None or size[0] == UNKNOWN or size[1] + size[0] > len(data):
            raise ValueError("truncated or unknown-size child element")
        end = size[1] + size[0]
        out.append((head[0], data[i:end], data[size[1] : end]))
        i = end
    return out


def _uint(data: bytes) -> int:
    return int.from_bytes(data, "big") if data else 0


class OpusFromRed:
    """Feed the Matroska bytes in pieces (`feed`), get the rewritten bytes back; `finish` returns what is left."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._in_segment = False
        self._passthrough = False
        self._opus_tracks: set[int] = set()
        self._unwrappers: dict[int, RedUnwrapper] = {}
        self.clusters_rewritten = 0

    @property
    def red(self) -> int:
        return sum(u.red for u in self._unwrappers.values())

    @property
    def recovered(self) -> int:
        return sum(u.recovered for u in self._unwrappers.values())

    @property
    def malformed(self) -> int:
        return sum(u.malformed for u in self._unwrappers.values())

    def feed(self, chunk: bytes) -> bytes:
        if self._passthrough:
            return chunk
        self._buf += chunk
        out = bytearray()
        try:
            self._drain(out)
        except ValueError as exc:
            log.warning("export: RED unwrapping stops here (%s); the rest is passed on unchanged", exc)
            self._passthrough = True
            out += self._buf
            self._buf.clear()
        return bytes(out)

    def finish(self) -> bytes:
        """The bytes of an incomplete last element (a truncated stream), unchanged."""
        rest = bytes(self._buf)
        self._buf.clear()
        return rest

    def _drain(self, out: bytearray) -> None:
        buf = self._buf
        while True:
            head = _read_id(buf, 0)
            size = None if head is None else _read_size(buf, head[1])
            if head is None or size is None:
                return
            eid, (length, start) = head[0], size
            if eid == SEGMENT and not self._in_segment:
                if length != UNKNOWN:
                    raise ValueError("a Segment of known size")
                out += buf[:start]
                del buf[:start]
                self._in_segment = True
                continue
            if length == UNKNOWN:
                raise ValueError(f"an element of unknown size (id {eid:#x})")
            end = start + length
            if len(buf) < end:
                return
            element, data = bytes(buf[:end]), bytes(buf[start:end])
            del buf[:end]
            if eid == TRACKS:
                self._read_tracks(data)
                out += element
            elif eid == CLUSTER and self._opus_tracks:
                out += self._cluster(element, data)
            else:
                out += element

    def _read_tracks(self, data: bytes) -> None:
        for eid, _, entry in _children(data):
            if eid != TRACK_ENTRY:
                continue
            fields = {cid: value for cid, _, value in _children(entry)}
            if fields.get(CODEC_ID, b"").rstrip(b"\x00") == b"A_OPUS" and TRACK_NUMBER in fields:
                number = _uint(fields[TRACK_NUMBER])
                self._opus_tracks.add(number)
                self._unwrappers.setdefault(number, RedUnwrapper())

    def _cluster(self, element: bytes, data: bytes) -> bytes:
        children = _children(data)
        if not any(
            self._stored_red(eid, value) for eid, _, value in children
        ):  # nothing stored as RED here: feed the unwrappers what was written (they
            # remember it, to tell a lost packet from one already written) and pass the cluster on as it is
            base = next((_uint(v) for eid, _, v in children if eid == CLUSTER_TIMESTAMP), 0)
            for eid, _, value in children:
                if eid == SIMPLE_BLOCK:
                    self._block(value, base)
                elif eid == BLOCK_GROUP:
                    self._group(value, base)
            return element
        base = 0
        parts: list[bytes] = []
        for eid, whole, value in children:
            if eid == CRC32:
                continue
            if eid == CLUSTER_TIMESTAMP:
                base = _uint(value)
            if eid == SIMPLE_BLOCK:
                parts.extend(_element(SIMPLE_BLOCK, b) for b in self._block(value, base))
            elif eid == BLOCK_GROUP:
                parts.extend(self._group(value, base) or [whole])
            else:
                parts.append(whole)
        body = b"".join(parts)
        self.clusters_rewritten += 1
        crc = _element(CRC32, zlib.crc32(body).to_bytes(4, "little"))
        return _element(CLUSTER, crc + body)

    def _stored_red(self, eid: int, value: bytes) -> bool:
        if eid == BLOCK_GROUP:
            value = next((v for cid, _, v in _children(value) if cid == BLOCK), b"")
        elif eid != SIMPLE_BLOCK:
            return False
        track = _read_size(value, 0)
        return (
            track is not None
            and track[0] in self._unwrappers
            and value[track[1] + 3 : track[1] + 5] == STORED_RED
        )

    def _group(self, data: bytes, base: int) -> list[bytes]:
        """One BlockGroup's data -> the BlockGroup elements to write in its place (its other children, such as
        the duration, copied to each); [] if it has no Block."""
        children = _children(data)
        block = next((value for eid, _, value in children if eid == BLOCK), None)
        if block is None:
            return []
        out = []
        for new in self._block(block, base):
            body = b"".join(_element(BLOCK, new) if eid == BLOCK else whole for eid, whole, _ in children)
            out.append(_element(BLOCK_GROUP, body))
        return out

    def _block(self, value: bytes, base: int) -> list[bytes]:
        """One (Simple)Block's data -> the block data to write in its place (unchanged unless Opus)."""
        track = _read_size(value, 0)  # the track number is a vint like a size
        if track is None or track[1] + 3 > len(value):
            raise ValueError("truncated SimpleBlock")
        number, i = track
        unwrapper = self._unwrappers.get(number)
        flags = value[i + 2]
        if unwrapper is None or flags & 0x06:  # not an Opus track, or laced (our muxer never laces)
            return [value]
        head = value[:i]
        rel = int.from_bytes(value[i : i + 2], "big", signed=True)
        out = []
        for data, pts in unwrapper.feed(value[i + 3 :], base + rel):
            rel_out = max(-32768, min(32767, pts - base))
            out.append(head + rel_out.to_bytes(2, "big", signed=True) + bytes([flags]) + data)
        return out


class RedUnwrappedStream(DecryptedStream):
    """A decrypted stream whose Opus tracks come out as plain Opus (stored RED unwrapped, losses repaired)."""

    filter: OpusFromRed | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        self.filter = flt = OpusFromRed()
        async for chunk in super().__aiter__():
            out = flt.feed(chunk)
            if out:
                yield out
        rest = flt.finish()
        if rest:
            yield rest
        if flt.red:
            log.info(
                "export of %s/%s: %d RED packets unwrapped, %d lost packets put back from redundancy, "
                "%d malformed dropped",
                self.recording_id,
                self.stream_id,
                flt.red,
                flt.recovered,
                flt.malformed,
            )
