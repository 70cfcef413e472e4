"""Muxing ENCODED packets (VP8 video, Opus audio) into Matroska with PyAV, without decoding or transcoding.

One `StreamMuxer` is one Matroska stream: one recorded source (a participant's audio and video) over one
uninterrupted stretch. It writes to a non-seekable in-memory sink; `mux()` returns the bytes libavformat emitted
during that call. With `cluster_time_limit` below 1 s and a tiny `max_interleave_delta`, libavformat emits whole
clusters only, right when they end, so every chunk `mux()` returns is a self-contained piece of at most ~1 s of
media: the writer seals each one as its own segment and a crash loses at most the cluster still being filled.

Timestamps are milliseconds on the recording's common clock (time base 1/1000), so the streams of all sources
line up when exported. Opus needs an `OpusHead` in the Matroska CodecPrivate; PyAV cannot set extradata on a
pure mux stream, so the audio stream is declared with a libopus *encoder* context that is opened (which produces
the OpusHead) but never fed a frame: packets are muxed as received.
"""

from __future__ import annotations

import fractions
import logging

import av

log = logging.getLogger(__name__)

MS = fractions.Fraction(1, 1000)
CLUSTER_TIME_LIMIT_MS = 900
CLUSTER_SIZE_LIMIT = 512 * 1024


def vp8_keyframe_size(payload: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386 9.1); None if `payload` is not a keyframe."""
    if len(payload) < 10 or payload[0] & 1 or payload[3:6] != b"\x9d\x01\x2a":
        return None
    width = int.from_bytes(payload[6:8], "little") & 0x3FFF
    height = int.from_bytes(payload[8:10], "little") & 0x3FFF
    return (width, height) if width and height else None


class _Sink:
    """A write-only, non-seekable file object for PyAV (no seek/tell: Matroska is written as a live stream)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def write(self, data: bytes) -> int:
        self.buf += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self.buf)
        self.buf.clear()
        return out


class StreamMuxer:
    def __init__(self, *, video: tuple[int, int] | None, audio: bool, title: str = "") -> None:
        if video is None and not audio:
            raise ValueError("a stream needs audio or video")
        self._sink = _Sink()
        options = {
            "cluster_time_limit": str(CLUSTER_TIME_LIMIT_MS),
            "cluster_size_limit": str(CLUSTER_SIZE_LIMIT),
            "live": "1",
            "max_interleave_delta": "1",
        }
        self._c = av.open(self._sink, "w", format="matroska", options=options)
        if title:
            self._c.metadata["title"] = title
        self.video = None
        self.audio = None
        self.size = video
        self._last: dict[str, int] = {}
        if video is not None:
            self.video = self._c.add_mux_stream("vp8", width=video[0], height=video[1])
            self.video.time_base = MS
        if audio:
            self.audio = self._c.add_stream("libopus", rate=48000, layout="stereo")
            self.audio.time_base = MS
        self.closed = False

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(k for k, s in (("audio", self.audio), ("video", self.video)) if s is not None)

    def mux(self, kind: str, payload: bytes, pts_ms: int, keyframe: bool) -> bytes:
        stream = self.video if kind == "video" else self.audio
        if stream is None or self.closed:
            raise ValueError(f"no {kind} track in this stream")
        pts = max(pts_ms, self._last.get(kind, 0))  # timestamps must not go back within a track
        self._last[kind] = pts
        packet = av.Packet(payload)
        packet.stream = stream
        packet.time_base = MS
        packet.pts = packet.dts = pts
        packet.is_keyframe = keyframe or kind == "audio"
        try:
            self._c.mux(packet)
        except av.FFmpegError:
            log.warning("dropped a %s packet the muxer refused (pts %d)", kind, pts, exc_info=True)
        return self._sink.take()

    def close(self) -> bytes:
        """Finish the Matroska stream (last cluster, cues) and return the remaining bytes."""
        if not self.closed:
            self.closed = True
            self._c.close()
        return self._sink.take()
