"""A canonical ZIP container for evidence bundles: one byte layout per content, so ANY changed byte is detected.

Plain ZIP that every unzip tool reads, restricted to: stored (no compression), no extra fields, no comments,
no data descriptors, UTF-8 names (flag 0x0800), all times 1980-01-01 00:00, zero attributes, members sorted by
name. `read` parses strictly and then re-serializes: the input must equal `write(members)` byte for byte, so a
change in a header, a timestamp or padding fails just like a change in content. Pure: no I/O.
"""

from __future__ import annotations

import struct
import zlib

LOCAL, CENTRAL, END = 0x04034B50, 0x02014B50, 0x06054B50
VERSION, FLAGS, DOS_DATE = 20, 0x0800, 0x0021
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_END = struct.Struct("<IHHHHIIH")
MAX = 0xFFFFFFFF


class ZipFormatError(ValueError):
    pass


def _check_name(name: str) -> bytes:
    raw = name.encode("utf-8")
    parts = name.split("/")
    if (not name or name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts)
            or len(raw) > 0xFFFF or any(ord(c) < 0x20 for c in name)):
        raise ZipFormatError(f"bad member name {name!r}")
    return raw


def write(members: dict[str, bytes]) -> bytes:
    """Serialize members (name -> bytes) canonically."""
    if len(members) > 0xFFFF:
        raise ZipFormatError("too many members")
    out, central = bytearray(), bytearray()
    for name in sorted(members):
        data, raw = members[name], _check_name(name)
        if len(data) >= MAX or len(out) >= MAX:
            raise ZipFormatError("member too large for a non-ZIP64 bundle")
        crc, offset = zlib.crc32(data), len(out)
        out += _LOCAL.pack(LOCAL, VERSION, FLAGS, 0, 0, DOS_DATE, crc, len(data), len(data), len(raw), 0)
        out += raw + data
        central += _CENTRAL.pack(CENTRAL, VERSION, VERSION, FLAGS, 0, 0, DOS_DATE, crc, len(data), len(data),
                                 len(raw), 0, 0, 0, 0, 0, offset)
        central += raw
    cd_offset = len(out)
    out += central
    out += _END.pack(END, 0, 0, len(members), len(members), len(central), cd_offset, 0)
    return bytes(out)


def read(data: bytes) -> dict[str, bytes]:
    """Parse a canonical bundle zip; raise ZipFormatError on anything else (including any non-canonical byte)."""
    members: dict[str, bytes] = {}
    pos = 0
    try:
        while pos + 4 <= len(data) and struct.unpack_from("<I", data, pos)[0] == LOCAL:
            _sig, _ver, _flags, method, _t, _d, crc, csize, usize, nlen, xlen = _LOCAL.unpack_from(data, pos)
            pos += _LOCAL.size
            name = data[pos:pos + nlen].decode("utf-8")
            pos += nlen + xlen
            if method != 0 or csize != usize or pos + csize > len(data):
                raise ZipFormatError(f"member {name!r}: not stored or truncated")
            body = data[pos:pos + csize]
            pos += csize
            if zlib.crc32(body) != crc:
                raise ZipFormatError(f"member {name!r}: CRC mismatch")
            if name in members:
                raise ZipFormatError(f"member {name!r} appears twice")
            members[name] = body
    except (struct.error, UnicodeDecodeError) as e:
        raise ZipFormatError(f"malformed zip: {e}") from e
    if not members:
        raise ZipFormatError("not a bundle zip (no members)")
    try:
        canonical = write(members)
    except ZipFormatError as e:
        raise ZipFormatError(f"non-canonical zip: {e}") from e
    if canonical != data:
        first = _first_difference(canonical, data)
        raise ZipFormatError(f"non-canonical zip: differs from the canonical layout at byte {first}")
    return members


def _first_difference(a: bytes, b: bytes, chunk: int = 4096) -> int:
    n = min(len(a), len(b))
    for start in range(0, n, chunk):
        if a[start:start + chunk] != b[start:start + chunk]:
            end = min(start + chunk, n)
            return next((i for i in range(start, end) if a[i] != b[i]), end)
    return n
