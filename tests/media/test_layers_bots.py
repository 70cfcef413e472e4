"""The bots publish temporal layers too (issue 15 item 1: "the bots' fixtures encoded the same way"):
media/vp8_temporal.c encodes the clip as VP8 L1T3 with libvpx's per-frame reference and update flags, and the
bot's sender writes TID and TL0PICIDX into every descriptor (media/bots.py `LayeredPacker`). Checked here: the
clip really is thinnable (decoding only layer 0, or layers 0-1, gives exactly the pictures the full stream gives
for those frames), and through a real Hub over loopback a subscriber capped at layer 0 gets a quarter of the
frames, all decodable, while another gets all of them."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import av
import pytest

from media import vp8
from media.bots import Bot
from media.channels import DirectChannel
from media.config import MediaConfig
from media.fixtures import video_clip
from media.weaklink import STEP_BASE_LAYER
from tests.media.conftest import PC_SETUP_BLOCKS, MediaSession, wait_until
from tests.media.test_layers_browser import decode

pytestmark = [pytest.mark.timeout(90)]


def pictures(frames: list[bytes], keep: list[bool]) -> dict[int, str]:
    """Frame index -> SHA-1 of the decoded picture, decoding only the frames kept."""
    codec = av.CodecContext.create("vp8", "r")
    out: dict[int, str] = {}
    for i, (data, k) in enumerate(zip(frames, keep, strict=True)):
        if k:
            for picture in codec.decode(av.Packet(data)):
                out[i] = hashlib.sha1(b"".join(bytes(p) for p in picture.planes)).hexdigest()
    return out


def test_the_layered_clip_is_thinnable(tmp_path: Path) -> None:
    clip = video_clip(640, 480, 20, 4, 500_000, 2, cache_dir=tmp_path, layers=3)
    assert clip.layers[:8] == (0, 2, 1, 2, 0, 2, 1, 2) and clip.keyframes == (0, 40)
    frames = list(clip.frames)
    full = pictures(frames, [True] * len(frames))
    assert len(full) == len(frames)
    for cap in (0, 1):
        thin = pictures(frames, [layer <= cap for layer in clip.layers])
        assert len(thin) == sum(1 for layer in clip.layers if layer <= cap)
        assert all(thin[i] == full[i] for i in thin)  # leaving the upper layers out changes no lower picture
    rates = [sum(len(f) for f, layer in zip(frames, clip.layers, strict=True) if layer <= k) for k in range(3)]
    print(f"\nlayered clip: {len(frames)} frames, bytes of layers 0..k {rates}")
    assert rates[0] < rates[1] < rates[2]


@PC_SETUP_BLOCKS
async def test_a_bot_publishing_layers_is_thinned_per_subscriber(make_session: Any) -> None:
    # no pacing: this is about which frames go, not how fast (the pacer is tested on its own)
    session: MediaSession = make_session(MediaConfig(recover_after=600.0, pacing=False))
    layered = await asyncio.to_thread(video_clip, 640, 480, 20, 4, 500_000, 2, None, 3)
    hub = session.hub
    for pid, kwargs in (("p", {"audio": False, "clip": layered}), ("s", {"audio": False, "video": False}),
                        ("f", {"audio": False, "video": False})):
        await hub.add(pid, {"name": pid})
        bot = Bot(pid, session.router.attach(DirectChannel(hub, pid)), session.config, keep_frames=2000, **kwargs)
        session.bots[pid] = bot
        await bot.join()
    s, f = session.bots["s"], session.bots["f"]
    pub = hub._peers["p"].publications["camera"]
    await wait_until(lambda: s.receiving_from("p", ("camera",)) and f.receiving_from("p", ("camera",))
                     and len(pub.layer_rates) == 3, within=30)
    slot_s = next(x for x in hub._peers["s"].slots if x.publication is pub)
    await hub.set_link_level("s", hub._peers["s"].steps.index(STEP_BASE_LAYER))
    await wait_until(lambda: slot_s.forwarder.layer == 0, within=5)
    await asyncio.sleep(1.0)
    got_s, got_f = s.received[("p", "camera")], f.received[("p", "camera")]
    start = (pub.frames_in, got_s.frames, got_f.frames, pub.keyframe_requests)
    await asyncio.sleep(6.0)
    pub_n, s_n, f_n = pub.frames_in - start[0], got_s.frames - start[1], got_f.frames - start[2]
    assert got_s.kept is not None and got_f.kept is not None
    s_decoded, s_errors = decode(list(got_s.kept))
    f_decoded, f_errors = decode(list(got_f.kept))
    print(f"\nbot publisher, layer rates {pub.layer_rates}: {pub_n} frames in 6 s; at layer 0: {s_n} "
          f"({s_n / pub_n:.2f}), all {len(got_s.kept)} received decoded: {s_decoded}, errors {s_errors}; full: {f_n} "
          f"({f_n / pub_n:.2f}), decoded {f_decoded}, errors {f_errors}; left out {slot_s.forwarder.layer_dropped}")
    assert 0.18 <= s_n / pub_n <= 0.33 and f_n >= 0.85 * pub_n
    assert s_errors == 0 and s_decoded == len(got_s.kept) and f_errors == 0
    assert slot_s.forwarder.layer_dropped > 0 and slot_s.forwarder.layer_cap == 0
    assert pub.keyframe_requests == start[3]  # no key frame asked for because of the cap
    assert hub.stats()["participants"]["f"]["max_layer"] is None and vp8.ALL_LAYERS == 3
