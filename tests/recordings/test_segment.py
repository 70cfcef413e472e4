"""The segment format: byte fixtures, an independent re-derivation, and tampering properties."""

from __future__ import annotations

import hashlib
import struct

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mediation.errors import IntegrityError, InvalidInput
from recordings.segment import (
    MAX_PLAINTEXT,
    Header,
    SegmentOpener,
    SegmentSealer,
    open_stream,
    walk_frames,
)

KEY = bytes(32)
HEADER = Header("rec-1", "src-a.0", "sess-1", "dk-0001", bytes(range(1, 8)))
HEADER_HEX = "4f445245431a01057265632d31077372632d612e3006736573732d3107646b2d3030303101020304050607"
FRAME0_HEX = "00000015c7e97f169f5533309a76aab0cdca0f8c460de87c61"
FRAME1_HEX = "00000010056272e816ed84ac74b6d3dd873e71e5"


def build(plaintexts: list[bytes], header: Header = HEADER, key: bytes = KEY) -> tuple[bytes, list[bytes]]:
    sealer = SegmentSealer(key, header)
    frames = [bytes(sealer.seal(p, last=i == len(plaintexts) - 1)) for i, p in enumerate(plaintexts)]
    return header.to_bytes(), frames


def test_header_bytes_fixture_and_parse_round_trip() -> None:
    raw = HEADER.to_bytes()
    assert raw.hex() == HEADER_HEX
    parsed, n = Header.parse(raw + b"trailing")
    assert parsed == HEADER and n == len(raw)
    assert parsed.to_bytes() == raw


def test_stream_bytes_fixture() -> None:
    head, frames = build([b"hello", b""])
    assert frames[0].hex() == FRAME0_HEX
    assert frames[1].hex() == FRAME1_HEX
    header, pts, status = open_stream(KEY, head + b"".join(frames), expected=HEADER)
    assert header == HEADER and pts == [b"hello", b""]
    assert status.complete and status.kind == "complete" and status.segments == 2
    assert status.frame_hashes == [hashlib.sha256(f).hexdigest() for f in frames]


def test_construction_matches_the_documented_formula() -> None:
    """Re-derive key and nonces from the module docstring, independently of the implementation."""
    raw = HEADER.to_bytes()
    key = HKDF(
        hashes.SHA256(), 32, salt=HEADER.nonce_prefix, info=b"onedoor-rec-v1/segment-key" + raw
    ).derive(KEY)
    aead = AESGCM(key)
    ct0 = aead.encrypt(HEADER.nonce_prefix + (0).to_bytes(4, "big") + b"\x00", b"hello", raw)
    ct1 = aead.encrypt(HEADER.nonce_prefix + (1).to_bytes(4, "big") + b"\x01", b"", raw)
    assert FRAME0_HEX == (struct.pack(">I", len(ct0)) + ct0).hex()
    assert FRAME1_HEX == (struct.pack(">I", len(ct1)) + ct1).hex()


def test_header_errors() -> None:
    with pytest.raises(IntegrityError):
        Header.parse(b"MKV...")
    raw = bytearray(HEADER.to_bytes())
    raw[6] = 9
    with pytest.raises(IntegrityError, match="version"):
        Header.parse(bytes(raw))
    with pytest.raises(IntegrityError, match="truncated"):
        Header.parse(HEADER.to_bytes()[:-1])
    with pytest.raises(InvalidInput):
        Header("r", "s", "x", "k", b"short")
    other = Header("rec-2", "src-a.0", "sess-1", "dk-0001", bytes(range(1, 8)))
    head, frames = build([b"x"], header=other)
    with pytest.raises(IntegrityError, match="does not match"):
        open_stream(KEY, head + b"".join(frames), expected=HEADER)


def test_segment_size_limit_and_finished_stream() -> None:
    sealer = SegmentSealer(KEY, HEADER)
    with pytest.raises(InvalidInput):
        sealer.seal(b"\0" * (MAX_PLAINTEXT + 1))
    sealer.seal(b"\0" * MAX_PLAINTEXT, last=True)
    with pytest.raises(IntegrityError):
        sealer.seal(b"more")


def test_incremental_feed_byte_by_byte() -> None:
    _head, frames = build([b"a" * 100, b"b" * 3, b"c"])
    opener = SegmentOpener(KEY, HEADER)
    out: list[bytes] = []
    for b in b"".join(frames):
        out += opener.feed(bytes([b]))
    assert out == [b"a" * 100, b"b" * 3, b"c"] and opener.finish().complete


def test_walk_frames_without_key() -> None:
    head, frames = build([b"one", b"two", b"three"])
    header, it = walk_frames(head + b"".join(frames) + frames[0][:3])
    assert header == HEADER and list(it) == frames


def test_wrong_key_fails_at_segment_zero() -> None:
    head, frames = build([b"one", b"two"])
    _, pts, status = open_stream(bytes([1] * 32), head + b"".join(frames))
    assert pts == [] and status.kind == "corrupt" and status.failed_at == 0


# --- properties: every kind of tampering is caught at the segment where it happens ---------------------------

segments = st.lists(st.binary(max_size=64), min_size=1, max_size=6)
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def read(frames: list[bytes], tail: bytes = b"") -> tuple[list[bytes], object]:
    _, pts, status = open_stream(KEY, HEADER.to_bytes() + b"".join(frames) + tail)
    return pts, status


@SETTINGS
@given(segments)
def test_round_trip(pts: list[bytes]) -> None:
    _, frames = build(pts)
    out, status = read(frames)
    assert out == pts and status.complete and status.segments == len(pts)  # type: ignore[attr-defined]


@SETTINGS
@given(segments, st.data())
def test_dropping_a_segment_is_detected_there(pts: list[bytes], data: st.DataObject) -> None:
    _, frames = build(pts)
    k = data.draw(st.integers(0, len(frames) - 1))
    out, status = read(frames[:k] + frames[k + 1 :])
    assert not status.complete and status.failed_at == k and out == pts[:k]  # type: ignore[attr-defined]


@SETTINGS
@given(segments, st.data())
def test_duplicating_a_segment_is_detected_there(pts: list[bytes], data: st.DataObject) -> None:
    _, frames = build(pts)
    k = data.draw(st.integers(0, len(frames) - 1))
    out, status = read([*frames[: k + 1], frames[k], *frames[k + 1 :]])
    assert not status.complete and status.failed_at == k + 1 and out == pts[: k + 1]  # type: ignore[attr-defined]
    assert "again" in status.problem or "after the final" in status.problem  # type: ignore[attr-defined]


@SETTINGS
@given(st.lists(st.binary(max_size=64), min_size=2, max_size=6), st.data())
def test_reordering_is_detected_at_the_first_moved_segment(pts: list[bytes], data: st.DataObject) -> None:
    _, frames = build(pts)
    i = data.draw(st.integers(0, len(frames) - 2))
    j = data.draw(st.integers(i + 1, len(frames) - 1))
    swapped = list(frames)
    swapped[i], swapped[j] = swapped[j], swapped[i]
    out, status = read(swapped)
    assert not status.complete and status.failed_at == i and out == pts[:i]  # type: ignore[attr-defined]


@SETTINGS
@given(segments, st.data())
def test_truncation_is_never_complete(pts: list[bytes], data: st.DataObject) -> None:
    head, frames = build(pts)
    body = b"".join(frames)
    cut = data.draw(st.integers(0, len(body) - 1))
    ends = [sum(len(f) for f in frames[: i + 1]) for i in range(len(frames))]
    expected_k = sum(1 for e in ends if e <= cut)  # segments wholly before the cut
    _, out, status = open_stream(KEY, head + body[:cut])
    assert not status.complete and status.kind == "truncated" and status.failed_at == expected_k
    assert out == pts[:expected_k] and f"segment {expected_k}" in status.describe()


@SETTINGS
@given(segments, st.data())
def test_any_bit_flip_is_detected_at_its_segment(pts: list[bytes], data: st.DataObject) -> None:
    head, frames = build(pts)
    blob = bytearray(head + b"".join(frames))
    bit = data.draw(st.integers(0, len(blob) * 8 - 1))
    blob[bit // 8] ^= 1 << (bit % 8)
    pos = bit // 8 - len(head)
    try:
        _, out, status = open_stream(KEY, bytes(blob))
    except IntegrityError:
        assert pos < 0  # only a damaged header fails before the segments
        return
    expected_k = 0 if pos < 0 else next(i for i in range(len(frames)) if pos < sum(map(len, frames[: i + 1])))
    assert not status.complete and status.failed_at == expected_k and out == pts[:expected_k]


@SETTINGS
@given(segments, st.binary(min_size=1, max_size=40))
def test_data_after_the_final_segment_is_not_complete(pts: list[bytes], junk: bytes) -> None:
    _, frames = build(pts)
    _, status = read(frames, junk)
    assert not status.complete and status.failed_at == len(pts)  # type: ignore[attr-defined]


def test_missing_last_segment_reports_truncated_at_k() -> None:
    _, frames = build([b"a", b"b", b"c"])
    _, status = read(frames[:2])
    assert status.describe() == "truncated at segment 2: no final segment"  # type: ignore[attr-defined]
