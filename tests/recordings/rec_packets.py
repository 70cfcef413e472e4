"""Real encoded media for the recording tests: VP8 video and Opus audio made with PyAV's encoders."""

from __future__ import annotations

import fractions
import math
import os
from array import array
from dataclasses import dataclass

import av


@dataclass(frozen=True)
class Pkt:
    kind: str
    pts_ms: int
    keyframe: bool
    data: bytes


def vp8_packets(
    seconds: float,
    *,
    width: int = 320,
    height: int = 240,
    fps: int = 15,
    bitrate: int = 300_000,
    noise: bool = False,
    gop: int = 30,
) -> list[Pkt]:
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = width, height, "yuv420p"
    enc.time_base = fractions.Fraction(1, 1000)
    enc.framerate = fractions.Fraction(fps, 1)
    enc.bit_rate = bitrate
    enc.gop_size = gop
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    out: list[Pkt] = []
    frame = av.VideoFrame(width, height, "yuv420p")
    y, u, v = frame.planes
    for i in range(int(seconds * fps)):
        if noise:
            y.update(os.urandom(y.buffer_size))
        else:
            row = bytearray(y.line_size)
            x0 = (i * 6) % max(1, width - 24)
            row[x0 : x0 + 24] = b"\xff" * 24
            y.update(bytes(row) * height)
        u.update(bytes([(i * 5) % 256]) * u.buffer_size)
        v.update(bytes([128]) * v.buffer_size)
        frame.pts = int(i * 1000 / fps)
        frame.time_base = fractions.Fraction(1, 1000)
        for p in enc.encode(frame):
            out.append(Pkt("video", int(p.pts or 0), bool(p.is_keyframe), bytes(p)))
    for p in enc.encode(None):
        out.append(Pkt("video", int(p.pts or 0), bool(p.is_keyframe), bytes(p)))
    return out


def opus_packets(seconds: float, *, freq: float = 440.0) -> list[Pkt]:
    enc = av.CodecContext.create("libopus", "w")
    enc.sample_rate, enc.layout, enc.format = 48000, "stereo", "s16"
    enc.time_base = fractions.Fraction(1, 48000)
    out: list[Pkt] = []
    n, t = 960, 0
    for _ in range(int(seconds * 50)):
        samples = array("h")
        for k in range(n):
            s = int(math.sin(2 * math.pi * freq * (t + k) / 48000) * 6000)
            samples.extend((s, s))
        fr = av.AudioFrame(format="s16", layout="stereo", samples=n)
        fr.planes[0].update(samples.tobytes())
        fr.sample_rate, fr.pts, fr.time_base = 48000, t, fractions.Fraction(1, 48000)
        t += n
        for p in enc.encode(fr):
            out.append(Pkt("audio", max(0, int((p.pts or 0) * 1000 / 48000)), True, bytes(p)))
    return out


def av_packets(seconds: float, *, offset_ms: int = 0, **video: object) -> list[Pkt]:
    """Audio and video of one source, interleaved by time, shifted by `offset_ms` on the recording clock."""
    pkts = vp8_packets(seconds, **video) + opus_packets(seconds)  # type: ignore[arg-type]
    pkts.sort(key=lambda p: (p.pts_ms, p.kind))
    return [Pkt(p.kind, p.pts_ms + offset_ms, p.keyframe, p.data) for p in pkts]


def ffprobe_json(path: str) -> dict[str, object]:
    import json
    import subprocess

    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-count_packets", "-of", "json", path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result


def decoded_duration(path: str) -> float:
    """Duration from the last decoded frame's time (works for files without a duration index)."""
    import subprocess

    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "packet=pts_time,duration_time", "-of", "csv=p=0", path],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    ends = []
    for line in out.split():
        parts = [x for x in line.split(",") if x and x != "N/A"]
        if parts:
            ends.append(sum(float(x) for x in parts[:2]))
    return max(ends) if ends else 0.0


def clock_area(path: str, at: str) -> bytes:
    """Grey pixels of the bottom-left corner (where the burned-in clock is) of the frame at `at` seconds."""
    import subprocess

    return subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-ss",
            at,
            "-i",
            path,
            "-frames:v",
            "1",
            "-vf",
            "crop=300:40:0:ih-50",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "gray",
            "-",
        ],
        check=True,
        capture_output=True,
    ).stdout


def volume_report(path: str) -> str:
    import subprocess

    return subprocess.run(
        ["ffmpeg", "-v", "info", "-i", path, "-af", "volumedetect", "-vn", "-f", "null", "-"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
