"""Pre-encoded media for synthetic participants: encoded ONCE with PyAV, then cached (memory + a cache file).

`video_clip()` is VP8 640x480 at 30 fps and ~800 kbit/s with a keyframe every 2 s (4 s long, looped);
`audio_clip()` is Opus, 20 ms packets with in-band FEC (LBRR) and DTX allowed (1 s long, looped). A bot then only paces and packetizes bytes.
`video_clip(layers=3)` is the same picture as VP8 with three temporal layers (L1T3, as the pages send), encoded by
media/vp8_temporal.c (libvpx; PyAV cannot set the per-frame flags), built once per machine with gcc.
The cache file is a plain length-prefixed format (never pickle) under the system temp dir, or `cache_dir`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType

logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
_memory: dict[str, EncodedClip] = {}


@dataclass(frozen=True)
class EncodedClip:
    kind: str
    frames: tuple[bytes, ...]
    keyframes: tuple[int, ...]  # indices of keyframes in `frames` (video); every frame for audio
    frame_ticks: int  # RTP clock ticks per frame
    clock_rate: int
    layers: tuple[int, ...] = ()  # video: each frame's temporal layer id (L1T3: 0, 2, 1, 2 ...); (): one layer

    @property
    def frame_seconds(self) -> float:
        return self.frame_ticks / self.clock_rate

    @property
    def bitrate(self) -> float:
        return sum(len(f) for f in self.frames) * 8 / (len(self.frames) * self.frame_seconds)


def _cache_path(key: str, cache_dir: Path | None) -> Path:
    base = cache_dir or Path(tempfile.gettempdir()) / "onedoor-bot-media"
    return base / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.clip"


def _save(path: Path, clip: EncodedClip) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    keys = set(clip.keyframes)
    def flags(i: int) -> int:  # bit 0: key frame; bit 7: has a temporal layer id, in bits 1-2
        return (1 if i in keys else 0) | ((0x80 | clip.layers[i] << 1) if clip.layers else 0)

    body = b"".join(struct.pack("!IB", len(f), flags(i)) + f for i, f in enumerate(clip.frames))
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_bytes(struct.pack("!II", FORMAT_VERSION, len(clip.frames)) + body)
    os.replace(tmp, path)


def _load(path: Path, kind: str, frame_ticks: int, clock_rate: int) -> EncodedClip | None:
    try:
        data = path.read_bytes()
        version, count = struct.unpack_from("!II", data)
        if version != FORMAT_VERSION:
            return None
        pos, frames, keyframes, layers = 8, [], [], []
        for i in range(count):
            size, flags = struct.unpack_from("!IB", data, pos)
            pos += 5
            frames.append(data[pos : pos + size])
            pos += size
            if flags & 1:
                keyframes.append(i)
            if flags & 0x80:
                layers.append(flags >> 1 & 3)
        if pos != len(data) or not frames or len(layers) not in (0, len(frames)):
            return None
    except (OSError, struct.error):
        return None
    return EncodedClip(kind, tuple(frames), tuple(keyframes), frame_ticks, clock_rate, tuple(layers))


def _cached(
    key: str, kind: str, frame_ticks: int, clock_rate: int, make, cache_dir: Path | None
) -> EncodedClip:  # type: ignore[no-untyped-def]
    clip = _memory.get(key)
    if clip is None:
        path = _cache_path(key, cache_dir)
        clip = _load(path, kind, frame_ticks, clock_rate)
        if clip is None:
            logger.info("encoding bot %s clip (once): %s", kind, key)
            clip = make()
            try:
                _save(path, clip)
            except OSError:
                logger.warning("could not cache the bot clip in %s", path)
        _memory[key] = clip
    return clip


def video_clip(
    width: int = 640,
    height: int = 480,
    fps: int = 30,
    seconds: int = 4,
    bitrate: int = 800_000,
    gop_seconds: int = 2,
    cache_dir: Path | None = None,
    layers: int = 1,
) -> EncodedClip:
    """`layers`: 1, or 3 for VP8 with three temporal layers (L1T3; `gop_seconds * fps` a multiple of 4)."""
    if layers not in (1, 3):
        raise ValueError("layers: 1 or 3")
    key = f"vp8-v{FORMAT_VERSION}-{width}x{height}-{fps}-{seconds}-{bitrate}-{gop_seconds}" + (
        "-l1t3" if layers == 3 else "")

    def make() -> EncodedClip:
        if layers == 3:
            return _encode_video_layered(width, height, fps, seconds * fps, bitrate, gop_seconds * fps, cache_dir)
        return _encode_video(width, height, fps, seconds * fps, bitrate, gop_seconds * fps)

    return _cached(key, "video", 90000 // fps, 90000, make, cache_dir)


def audio_clip(seconds: int = 1, bitrate: int = 32_000, cache_dir: Path | None = None, tone_hz: int = 440
               ) -> EncodedClip:
    """`tone_hz`: the sine it plays (tests tell speakers apart by it, e.g. tests/media/test_speech_tap.py)."""
    key = f"opus-fec-v{FORMAT_VERSION}-{seconds}-{bitrate}" + ("" if tone_hz == 440 else f"-{tone_hz}hz")
    return _cached(key, "audio", 960, 48000, lambda: _encode_audio(seconds * 50, bitrate, tone_hz), cache_dir)


def _encode_video(width: int, height: int, fps: int, count: int, bitrate: int, gop: int) -> EncodedClip:
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.bit_rate = bitrate
    codec.time_base = Fraction(1, fps)
    codec.framerate = Fraction(fps, 1)
    codec.gop_size = gop
    codec.options = {
        "deadline": "realtime",
        "cpu-used": "8",
        "lag-in-frames": "0",
        "minrate": str(bitrate),
        "maxrate": str(bitrate),
        "bufsize": str(bitrate),
        "undershoot-pct": "95",
    }
    frames: list[bytes] = []
    keyframes: list[int] = []
    chroma = bytes([128]) * (width * height // 4)
    for i, luma in enumerate([*_pictures(width, height, count), None]):  # None: flush the encoder
        frame = None
        if luma is not None:
            frame = av.VideoFrame(width, height, "yuv420p")
            frame.planes[0].update(_pad(luma, frame.planes[0].line_size, width, height))
            frame.planes[1].update(_pad(chroma, frame.planes[1].line_size, width // 2, height // 2))
            frame.planes[2].update(_pad(chroma, frame.planes[2].line_size, width // 2, height // 2))
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            if i % gop == 0:
                frame.pict_type = PictureType.I
        for packet in codec.encode(frame):
            if packet.is_keyframe:
                keyframes.append(len(frames))
            frames.append(bytes(packet))
    frames = frames[:count]
    return EncodedClip("video", tuple(frames), tuple(k for k in keyframes if k < count), 90000 // fps, 90000)


def _encode_video_layered(width: int, height: int, fps: int, count: int, bitrate: int, gop: int,
                          cache_dir: Path | None) -> EncodedClip:
    if gop % 4:
        raise ValueError("a key frame must start the L1T3 pattern: gop_seconds * fps a multiple of 4")
    chroma = bytes([128]) * (width * height // 2)
    raw = b"".join(luma + chroma for luma in _pictures(width, height, count))
    result = subprocess.run([str(_vp8_temporal(cache_dir)), str(width), str(height), str(fps), str(bitrate),
                             str(gop), str(count)], input=raw, capture_output=True, check=True, timeout=120)
    out, pos = result.stdout, 0
    frames: list[bytes] = []
    keyframes: list[int] = []
    layers: list[int] = []
    while pos < len(out):
        size, key, layer = struct.unpack_from("!IBB", out, pos)
        pos += 6
        if key:
            keyframes.append(len(frames))
        frames.append(out[pos : pos + size])
        layers.append(layer)
        pos += size
    if len(frames) != count:
        raise RuntimeError(f"vp8_temporal gave {len(frames)} frames of {count}")
    return EncodedClip("video", tuple(frames), tuple(keyframes), 90000 // fps, 90000, tuple(layers))


def _vp8_temporal(cache_dir: Path | None) -> Path:
    """media/vp8_temporal.c, built once (gcc, libvpx-dev: `make install` puts both on the machine)."""
    source = Path(__file__).with_name("vp8_temporal.c")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:16]
    binary = (cache_dir or Path(tempfile.gettempdir()) / "onedoor-bot-media") / f"vp8_temporal-{digest}"
    if not binary.exists():
        gcc = shutil.which("gcc") or shutil.which("cc")
        if gcc is None:
            raise RuntimeError("a C compiler is needed to build media/vp8_temporal.c")
        binary.parent.mkdir(parents=True, exist_ok=True)
        tmp = binary.with_suffix(f".{os.getpid()}.tmp")
        subprocess.run([gcc, "-O2", "-o", str(tmp), str(source), "-lvpx"], check=True, capture_output=True,
                       timeout=120)
        os.replace(tmp, binary)
    return binary


def _pictures(width: int, height: int, count: int) -> list[bytes]:
    """The luma planes of `count` frames: a blocky random texture, scrolled diagonally (realistic motion, so the
    encoder spends its bit budget), plus a box of fresh noise every frame (a "talking head" never predicts
    perfectly)."""
    rng = random.Random(20260301)
    block, tex_w, tex_h = 8, width + 4 * count, height + 2 * count
    coarse = [rng.randbytes(tex_w // block + 1) for _ in range(tex_h // block + 1)]
    rows = [bytes(b for b in coarse[y // block] for _ in range(block))[:tex_w] for y in range(tex_h)]
    noise_w, noise_h = width // 8, height // 8
    pictures: list[bytes] = []
    for i in range(count):
        dx, dy = (4 * i) % (tex_w - width), (2 * i) % (tex_h - height)
        luma = b"".join(rows[dy + y][dx : dx + width] for y in range(height))
        noise = [rng.randbytes(noise_w) for _ in range(noise_h)]
        top = height // 3
        pictures.append(b"".join(
            [luma[: top * width]]
            + [
                luma[(top + y) * width : (top + y) * width + 64]
                + noise[y]
                + luma[(top + y) * width + 64 + noise_w : (top + y + 1) * width]
                for y in range(noise_h)
            ]
            + [luma[(top + noise_h) * width :]]
        ))
    return pictures


def _pad(data: bytes, line_size: int, width: int, height: int) -> bytes:
    if line_size == width:
        return data
    pad = bytes(line_size - width)
    return b"".join(data[y * width : (y + 1) * width] + pad for y in range(height))


def _encode_audio(count: int, bitrate: int, tone_hz: int = 440) -> EncodedClip:
    codec = av.CodecContext.create("libopus", "w")
    codec.sample_rate, codec.layout, codec.format = 48000, "stereo", "s16"
    codec.bit_rate = bitrate
    codec.time_base = Fraction(1, 48000)
    # as a browser does after the hub's offer (useinbandfec=1; usedtx=1): in-band FEC tuned for ~10 % loss, DTX
    codec.options = {"fec": "1", "packet_loss": "10", "dtx": "1"}
    packets: list[bytes] = []
    for i in range(count + 4):
        samples = b"".join(
            struct.pack("<hh", s, s)
            for n in range(960)
            for s in [int(8000 * math.sin(2 * math.pi * tone_hz * (i * 960 + n) / 48000))]
        )
        frame = av.AudioFrame(format="s16", layout="stereo", samples=960)
        frame.planes[0].update(samples)
        frame.sample_rate, frame.pts, frame.time_base = 48000, i * 960, Fraction(1, 48000)
        packets.extend(bytes(p) for p in codec.encode(frame))
    packets = packets[:count]
    return EncodedClip("audio", tuple(packets), tuple(range(len(packets))), 960, 48000)
