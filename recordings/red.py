"""RED (RFC 2198 redundant audio, "audio/red" carrying Opus): the wire format, pure bytes in and out.

An RTP payload in RED format is a chain of block headers, then the blocks' data in the same order:

     0                   1                   2                   3
    |F|  block PT   |    timestamp offset (14)  | block length (10) |   F=1: a redundant block, 4 bytes
    |0|  block PT   |                                                   F=0: the last header, the primary

The primary block is the last one (its length is whatever is left); each redundant block repeats an earlier
packet of the same stream, `timestamp offset` RTP ticks before this packet. Chromium sends one redundant block
(the previous packet) when the hub offers red before opus (media/sdpmunge.py).

Used by the hub (`primary`: a RED-less subscriber gets the primary block as a plain Opus packet), by the speech
tap, and by the export (`RedUnwrapper`, through recordings/mkvred.py), which turns stored RED packets back into
Opus and puts back a packet that was lost on the way to the hub when the next packet's redundant block holds it.

Stored form: the recorder keeps what it receives; a RED payload is stored with the 2-byte prefix `STORED_RED`,
which no Opus packet can start with (TOC byte 0xFF: code 3, then a frame count of 0, which RFC 6716 3.2.5 [R5]
forbids), so a recorded stream may mix plain Opus and RED packets (a publisher's new peer connection, or a browser
that stops sending RED) and every packet says which it is.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

MIME = "audio/red"
STORED_RED = b"\xff\x00"  # an invalid Opus packet start (code 3 with 0 frames): marks a stored RED payload
MAX_BLOCKS = 8  # redundant blocks accepted per packet (Chromium sends 1, RFC 2198 allows more)


@dataclass(frozen=True)
class Block:
    payload_type: int
    offset: int  # RTP timestamp ticks before the packet's own timestamp (0 for the primary)
    data: bytes


def parse(payload: bytes) -> tuple[list[Block], Block] | None:
    """(redundant blocks oldest first, the primary block), or None if the payload is not well-formed RED:
    a truncated header, more than MAX_BLOCKS redundant blocks, lengths past the end, or an empty primary."""
    n = len(payload)
    i = 0
    heads: list[tuple[int, int, int]] = []
    while True:
        if i >= n:
            return None
        b = payload[i]
        if not b & 0x80:
            primary_pt = b
            i += 1
            break
        if i + 4 > n or len(heads) == MAX_BLOCKS:
            return None
        word = int.from_bytes(payload[i + 1 : i + 4], "big")
        heads.append((b & 0x7F, word >> 10, word & 0x3FF))
        i += 4
    blocks: list[Block] = []
    for pt, offset, length in heads:
        if i + length > n:
            return None
        blocks.append(Block(pt, offset, payload[i : i + length]))
        i += length
    if i >= n:
        return None
    return blocks, Block(primary_pt, 0, payload[i:])


def primary(payload: bytes) -> bytes | None:
    """The primary block alone (a plain Opus payload), None if malformed as in `parse`. The hub's per-packet
    path: a few byte reads, no allocation but the slice."""
    n = len(payload)
    i = skip = 0
    while i < n:
        b = payload[i]
        if b < 0x80:
            start = i + 1 + skip
            return payload[start:] if start < n else None
        if i + 4 > n or i >= 4 * MAX_BLOCKS:
            return None
        skip += ((payload[i + 2] & 0x03) << 8) | payload[i + 3]
        i += 4
    return None


def build(blocks: list[Block], primary_block: Block) -> bytes:
    """A RED payload (tests, and the shape the parser accepts): headers, then the data."""
    head = bytearray()
    for b in blocks:
        if not 0 <= b.offset < 1 << 14 or len(b.data) >= 1 << 10:
            raise ValueError("RED block offset or length out of range")
        head += bytes([0x80 | b.payload_type]) + ((b.offset << 10) | len(b.data)).to_bytes(3, "big")
    head.append(primary_block.payload_type & 0x7F)
    return bytes(head) + b"".join(b.data for b in blocks) + primary_block.data


def stored(payload: bytes) -> bytes:
    """How the recorder keeps a RED payload (see the module docstring)."""
    return STORED_RED + payload


def opus_of_stored(data: bytes) -> bytes | None:
    """A stored audio packet as plain Opus: the primary of a stored RED payload, or the packet itself."""
    if data[:2] == STORED_RED:
        return primary(data[2:])
    return data


class RedUnwrapper:
    """Stored audio packets of one track, in order -> plain Opus packets, with losses repaired from redundancy.

    `feed(data, pts_ms)` returns the packets to write in place of `data`: a plain Opus packet as it is; for a
    stored RED packet, first each redundant block that is not one of the recent packets already written (it
    was lost before the hub: the point of RED), at `pts_ms` less its offset, then the primary. Nothing else
    in a recording says which packets arrived (the recorder's timestamps are arrival times, not RTP ones), so
    "already written" is byte equality with the last `remember` packets: a redundant block is an exact copy of
    the earlier packet. (Two different packets with equal bytes, e.g. DTX silence, only cost one repeated
    silent frame not being put back.) A malformed RED packet yields nothing and is counted, never raised.
    """

    def __init__(self, clock_rate: int = 48000, remember: int = 32) -> None:
        self._clock_rate = clock_rate
        self._recent: deque[bytes] = deque(maxlen=remember)
        self._seen: dict[bytes, int] = {}
        self._last_pts: int | None = None
        self.red = self.plain = self.recovered = self.malformed = 0

    def _remember(self, data: bytes) -> None:
        if len(self._recent) == self._recent.maxlen:
            old = self._recent[0]
            left = self._seen[old] - 1
            if left:
                self._seen[old] = left
            else:
                del self._seen[old]
        self._recent.append(data)
        self._seen[data] = self._seen.get(data, 0) + 1

    def feed(self, data: bytes, pts_ms: int) -> list[tuple[bytes, int]]:
        if data[:2] != STORED_RED:
            self.plain += 1
            self._remember(data)
            self._last_pts = pts_ms
            return [(data, pts_ms)]
        parsed = parse(data[2:])
        if parsed is None:
            self.malformed += 1
            return []
        self.red += 1
        redundant, main = parsed
        out: list[tuple[bytes, int]] = []
        for block in redundant:
            if not block.data or block.data in self._seen or self._last_pts is None:
                continue  # empty, already written, or from before this stream's first packet
            pts = pts_ms - (block.offset * 1000 + self._clock_rate // 2) // self._clock_rate
            pts = min(max(pts, self._last_pts + 1), pts_ms)
            out.append((block.data, pts))
            self._remember(block.data)
            self._last_pts = pts
            self.recovered += 1
        out.append((main.data, pts_ms))
        self._remember(main.data)
        self._last_pts = pts_ms
        return out
