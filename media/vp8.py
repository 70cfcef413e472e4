"""The VP8 RTP payload descriptor (RFC 7741, section 4.2), read once per packet. Pure: no networking, no aiortc.

      0 1 2 3 4 5 6 7
     +-+-+-+-+-+-+-+-+
     |X|R|N|S|R| PID | (REQUIRED)
     +-+-+-+-+-+-+-+-+
X:   |I|L|T|K| RSV   | (OPTIONAL)
     +-+-+-+-+-+-+-+-+
I:   |M| PictureID   | (OPTIONAL, 7 or 15 bits)
     +-+-+-+-+-+-+-+-+
L:   |   TL0PICIDX   | (OPTIONAL)
     +-+-+-+-+-+-+-+-+
T/K: |TID|Y| KEYIDX  | (OPTIONAL)
     +-+-+-+-+-+-+-+-+

Only these few bytes (and, for the first packet of a frame, the VP8 payload header's P bit and a key frame's
start code) are read. `parse` never raises: a payload too short for what its flags announce is not a VP8 payload
(None), and the forwarding path treats it as carrying no descriptor (no layer, no picture id, not a start).
"""

from __future__ import annotations

from typing import NamedTuple

PICTURE_ID_OFFSET = 2  # the picture id, when present, always follows the X byte
ALL_LAYERS = 3  # a temporal layer cap that lets every layer through (TID is two bits)


class Descriptor(NamedTuple):
    start: bool  # S=1 and partition index 0: the first packet of a frame
    keyframe: bool  # the first packet of a key frame (P bit 0 and the start code 9d 01 2a)
    picture_id: int  # -1 without one
    picture_id_bits: int  # 7 or 15 (0 without a picture id)
    tl0picidx: int  # -1 without one
    tid: int  # temporal layer id, -1 without the T bit (a publisher that sends no temporal layers)
    layer_sync: bool  # Y: this frame depends only on temporal layer 0 frames (a safe point to add its layer)


def parse(payload: bytes) -> Descriptor | None:
    """The descriptor of one VP8 RTP payload, or None if the payload is too short for its own flags."""
    n = len(payload)
    if n < 2:
        return None
    b0 = payload[0]
    start = bool(b0 & 0x10) and not b0 & 0x07
    i = 1
    pid, bits, tl0, tid, sync = -1, 0, -1, -1, False
    if b0 & 0x80:  # X: extended control bits
        x = payload[1]
        i = 2
        if x & 0x80:  # I: picture id
            if i >= n:
                return None
            if payload[i] & 0x80:
                if i + 1 >= n:
                    return None
                pid, bits = ((payload[i] & 0x7F) << 8) | payload[i + 1], 15
                i += 2
            else:
                pid, bits = payload[i], 7
                i += 1
        if x & 0x40:  # L: TL0PICIDX
            if i >= n:
                return None
            tl0 = payload[i]
            i += 1
        if x & 0x30:  # T or K: one byte TID|Y|KEYIDX
            if i >= n:
                return None
            if x & 0x20:
                tid, sync = payload[i] >> 6, bool(payload[i] & 0x20)
            i += 1
    # the VP8 payload header: P bit (bit 0) is 0 for key frames, which carry the start code 9d 01 2a
    keyframe = start and i + 6 <= n and not payload[i] & 0x01 and payload[i + 3 : i + 6] == b"\x9d\x01\x2a"
    return Descriptor(start, keyframe, pid, bits, tl0, tid, sync)


def with_picture_id(payload: bytes, picture_id: int, bits: int) -> bytes:
    """`payload` with its picture id (present, `bits` wide) replaced; the rest of the bytes unchanged."""
    pos = PICTURE_ID_OFFSET
    if bits == 15:
        return b"".join((payload[:pos], bytes([0x80 | (picture_id >> 8), picture_id & 0xFF]), payload[pos + 2 :]))
    return b"".join((payload[:pos], bytes([picture_id & 0x7F]), payload[pos + 1 :]))


def descriptor_bytes(
    *,
    start: bool = True,
    picture_id: int | None = None,
    long_picture_id: bool = True,
    tl0picidx: int | None = None,
    tid: int | None = None,
    layer_sync: bool = False,
    keyidx: int | None = None,
) -> bytes:
    """Build a descriptor (RFC 7741) as a sender would: for tests and for packetizers that want layers."""
    x = 0
    tail = b""
    if picture_id is not None:
        x |= 0x80
        if long_picture_id:
            tail += bytes([0x80 | ((picture_id >> 8) & 0x7F), picture_id & 0xFF])
        else:
            tail += bytes([picture_id & 0x7F])
    if tl0picidx is not None:
        x |= 0x40
        tail += bytes([tl0picidx & 0xFF])
    if tid is not None or keyidx is not None:
        byte = 0
        if tid is not None:
            x |= 0x20
            byte |= (tid & 0x03) << 6 | (0x20 if layer_sync else 0)
        if keyidx is not None:
            x |= 0x10
            byte |= keyidx & 0x1F
        tail += bytes([byte])
    b0 = (0x80 if x else 0) | (0x10 if start else 0)
    return bytes([b0]) + (bytes([x]) + tail if x else b"")
