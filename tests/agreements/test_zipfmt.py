"""The canonical bundle zip: round trips, readable by the standard library, and strict about every byte."""

from __future__ import annotations

import io
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediation.agreements import zipfmt

names = st.text(alphabet="abc汉字-_.", min_size=1, max_size=12).filter(
    lambda n: n not in (".", "..") and not n.startswith("."))
members = st.dictionaries(st.builds(lambda a, b: f"{a}/{b}", names, names), st.binary(max_size=300), min_size=1,
                          max_size=6)


@settings(max_examples=60, deadline=None)
@given(members)
def test_round_trip_and_stdlib_compatible(m: dict[str, bytes]) -> None:
    data = zipfmt.write(m)
    assert zipfmt.read(data) == m
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        assert {n: z.read(n) for n in z.namelist()} == m


@settings(max_examples=40, deadline=None)
@given(members, st.data())
def test_any_flipped_bit_is_rejected_or_changes_content(m: dict[str, bytes], data: st.DataObject) -> None:
    raw = bytearray(zipfmt.write(m))
    pos = data.draw(st.integers(0, len(raw) - 1))
    raw[pos] ^= 1 << data.draw(st.integers(0, 7))
    try:
        out = zipfmt.read(bytes(raw))
    except zipfmt.ZipFormatError:
        return
    assert out != m  # only a change in content (or a name) can parse, and then it is visible


def test_stdlib_zip_with_timestamps_is_not_canonical() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("a.txt", b"hello")
    with pytest.raises(zipfmt.ZipFormatError):
        zipfmt.read(buf.getvalue())


@pytest.mark.parametrize("bad", ["/abs", "a/../b", "a\\b", "", "a//b", "./a"])
def test_unsafe_names_are_refused(bad: str) -> None:
    with pytest.raises(zipfmt.ZipFormatError):
        zipfmt.write({bad: b"x"})
