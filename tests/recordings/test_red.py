"""RED (RFC 2198) on real bytes: parsing, the hub's primary extraction, the export's unwrapping with losses put
back from redundancy, malformed packets dropped and counted; then a recording of stored RED exported to Opus
that ffprobe and ffmpeg play (duration, packets, non-silent audio)."""

from __future__ import annotations

import io
from pathlib import Path

import av
import pytest
from rec_helpers import record
from rec_packets import Pkt, ffprobe_json, opus_packets, volume_report

from mediation.db import Database
from mediation.keyring import KeyRing
from recordings import red
from recordings.export import export
from recordings.mkvred import OpusFromRed, RedUnwrappedStream
from recordings.muxer import StreamMuxer
from recordings.reader import authorize_read
from recordings.storage import LocalStorage

OPUS_PT = 96


@pytest.fixture(scope="module")
def opus() -> list[Pkt]:
    # 150 real Opus packets, 20 ms apart. Not 440 Hz: its period is exactly five frames, and libopus then writes
    # byte-identical packets (one of 150 with the libopus of PyAV 18.1), which the unwrapper rightly takes for
    # "already written" (recordings/red.py). The checks below need every packet distinct.
    packets = opus_packets(3.0, freq=437.1)
    assert len({p.data for p in packets}) == len(packets)
    return packets


def red_stream(opus: list[Pkt], distance: int = 1) -> list[bytes]:
    """What Chromium sends: packet k carries packets k-distance..k-1 as redundancy, then packet k."""
    out = []
    for k, p in enumerate(opus):
        blocks = [red.Block(OPUS_PT, 960 * (k - j), opus[j].data) for j in range(max(0, k - distance), k)]
        out.append(red.build(blocks, red.Block(OPUS_PT, 0, p.data)))
    return out


# -- the wire format ------------------------------------------------------------------------------------------
def test_parse_and_build_round_trip_on_rfc_2198_bytes() -> None:
    payload = bytes([0x80 | 96, 0x0F, 0x00, 0x03]) + bytes([0x60]) + b"abc" + b"primary"
    #                F=1 pt 96, offset 960 (0x3C0 << 10 = 0x0F0000), length 3; then F=0 pt 96
    parsed = red.parse(payload)
    assert parsed is not None
    blocks, main = parsed
    assert blocks == [red.Block(96, 960, b"abc")]
    assert main == red.Block(96, 0, b"primary")
    assert red.build(blocks, main) == payload
    assert red.primary(payload) == b"primary"
    # no redundancy: one header byte, then the primary
    assert red.parse(b"\x60opus") == ([], red.Block(96, 0, b"opus"))
    assert red.primary(b"\x60opus") == b"opus"
    two = red.build([red.Block(96, 1920, b"x" * 300), red.Block(96, 960, b"y" * 2)], red.Block(96, 0, b"z"))
    assert red.primary(two) == b"z"
    assert [b.offset for b in red.parse(two)[0]] == [1920, 960]  # type: ignore[index]


@pytest.mark.parametrize(
    "payload",
    [
        b"",  # nothing
        b"\xe0",  # F=1 header cut after its first byte
        b"\xe0\x0f\x00",  # F=1 header cut short
        b"\xe0\x0f\x00\x03",  # no final header
        b"\xe0\x0f\x00\x03\x60ab",  # block length 3 but only 2 bytes follow the headers
        b"\xe0\x0f\x03\xff\x60" + b"x" * 100,  # block length 1023, past the end
        b"\x60",  # an empty primary
        b"\xe0\x0f\x00\x01\x60x",  # the redundant block takes everything: empty primary
        b"\xe0\x0f\x00\x00" * 9 + b"\x60x",  # more redundant blocks than MAX_BLOCKS
    ],
)
def test_malformed_red_is_refused_never_raised(payload: bytes) -> None:
    assert red.parse(payload) is None
    assert red.primary(payload) is None
    unwrapper = red.RedUnwrapper()
    assert unwrapper.feed(red.stored(payload), 0) == []
    assert unwrapper.malformed == 1


def test_stored_marker_is_never_an_opus_packet_start(opus: list[Pkt]) -> None:
    decoder = av.CodecContext.create("opus", "r")
    with pytest.raises(av.FFmpegError):
        decoder.decode(av.Packet(red.STORED_RED + b"\x00" * 10))
    assert not any(p.data.startswith(red.STORED_RED) for p in opus)
    assert red.opus_of_stored(opus[0].data) == opus[0].data
    assert red.opus_of_stored(red.stored(red_stream(opus)[3])) == opus[3].data


def test_unwrapper_puts_back_what_redundancy_covers(opus: list[Pkt]) -> None:
    stream = red_stream(opus, distance=2)
    lost = {5, 6, 40, 41, 42, 90}  # two blocks of redundancy cover k-1 and k-2: of 40..42, 40 stays lost
    unwrapper = red.RedUnwrapper()
    out: list[tuple[bytes, int]] = []
    for k, payload in enumerate(stream):
        if k not in lost:
            out.extend(unwrapper.feed(red.stored(payload), opus[k].pts_ms))
    got = [data for data, _ in out]
    # 40 is lost for good (43 covers 41 and 42 only); everything else is back, in order, each once
    assert got == [p.data for k, p in enumerate(opus) if k != 40]
    assert unwrapper.recovered == 5 and unwrapper.red == len(stream) - len(lost)
    pts = [t for _, t in out]
    assert pts == sorted(pts)
    assert dict(out)[opus[6].data] == opus[6].pts_ms  # at the arrival time less the block's offset


# -- inside a recorded Matroska stream ------------------------------------------------------------------------
def test_matroska_filter_rewrites_only_clusters_with_red(opus: list[Pkt]) -> None:
    plain = StreamMuxer(video=None, audio=True)
    chunks = [plain.mux("audio", p.data, p.pts_ms, True) for p in opus] + [plain.close()]
    flt = OpusFromRed()
    assert b"".join(flt.feed(c) for c in chunks) + flt.finish() == b"".join(chunks)  # byte for byte
    assert flt.clusters_rewritten == 0

    stream = red_stream(opus)
    muxer = StreamMuxer(video=None, audio=True)
    lost = set(range(10, 150, 9))
    bad = {30, 77}  # stored RED that does not parse: dropped, counted
    stored = []
    for k, p in enumerate(opus):
        if k in lost:
            continue
        data = red.stored(b"\xe0\xff" if k in bad else stream[k])
        stored.append(muxer.mux("audio", data, p.pts_ms, True))
    stored.append(muxer.close())
    flt = OpusFromRed()
    # fed in odd pieces: element boundaries never line up with the chunks
    blob = b"".join(stored)
    out = b"".join(flt.feed(blob[i : i + 777]) for i in range(0, len(blob), 777)) + flt.finish()
    # the malformed ones are dropped, and then put back from the next packet's redundancy like the lost ones
    assert flt.malformed == len(bad) and flt.recovered == len(lost) + len(bad) and flt.clusters_rewritten > 0
    with av.open(io.BytesIO(out), "r", format="matroska") as container:
        packets = [bytes(pk) for pk in container.demux(audio=0) if pk.size]
    assert packets == [p.data for p in opus]


async def test_export_of_stored_red_plays_with_losses_repaired(
    db: Database, keyring: KeyRing, storage: LocalStorage, tmp_path: Path, opus: list[Pkt]
) -> None:
    stream = red_stream(opus)
    lost = set(range(7, 150, 11))  # ~9 % lost before the hub, each covered by the next packet's redundancy
    pkts = [Pkt("audio", p.pts_ms, True, red.stored(stream[k])) for k, p in enumerate(opus) if k not in lost]
    rec, doc, counts = await record(db, storage, keyring, {"alice": pkts})
    assert counts["recorded"] == len(pkts)

    # the decrypted stream through the filter: every lost packet put back
    key = await authorize_read(db, keyring, rec.recording_id, actor="test", reason="check")
    stream_id = doc["manifest"]["streams"][0]["stream_id"]
    reader = RedUnwrappedStream(storage, key, rec.recording_id, stream_id)
    async for _ in reader:
        pass
    assert reader.filter is not None
    assert reader.filter.red == len(pkts) and reader.filter.recovered == len(lost)

    out = tmp_path / "raw.mkv"
    await export(db, storage, keyring, rec.recording_id, out, actor="judge:3", reason="review", raw=True)
    probe = ffprobe_json(str(out))
    audio = next(s for s in probe["streams"] if s["codec_type"] == "audio")  # type: ignore[union-attr,index]
    assert audio["codec_name"] == "opus"  # type: ignore[index]
    assert int(audio["nb_read_packets"]) == len(opus)  # type: ignore[index]
    assert abs(float(probe["format"]["duration"]) - len(opus) * 0.02) < 0.2  # type: ignore[index]
    report = volume_report(str(out))
    assert "Error" not in report and "Invalid data" not in report
    mean = float(report.split("mean_volume:")[1].split("dB")[0])
    assert mean > -40  # the tone, decoded (silence is -91 dB)

    grid = tmp_path / "grid.mp4"
    await export(
        db, storage, keyring, rec.recording_id, grid, actor="judge:3", reason="review", tile=(320, 180)
    )
    mean_grid = float(volume_report(str(grid)).split("mean_volume:")[1].split("dB")[0])
    assert mean_grid > -40
