"""Temporal layers with real Chromium (issue 15 item 1): a headless Chromium 156 page publishes its fake camera as
VP8 with `scalabilityMode: "L1T3"` through a real Hub over loopback to (a) an aiortc bot held at the ladder's
base-layer step (temporal layer 0 only), which gets about a quarter of the publisher's frames, every one decodable
(PyAV's VP8 decoder, no errors) and asks for no key frame; and (b) a second Chromium page at full layers, which
decodes the full frame rate without freezes or PLIs. Outcomes (ratios, counts), never wall-clock timings."""

from __future__ import annotations

import asyncio
from typing import Any

import av
import pytest
from playwright.async_api import Browser

from media import passthrough, vp8
from media.bots import Bot
from media.channels import DirectChannel
from media.config import MediaConfig
from media.fixtures import video_clip
from media.weaklink import STEP_BASE_LAYER
from tests.media.chromium_peer import ChromiumPeer
from tests.media.conftest import PC_SETUP_BLOCKS, MediaSession, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90), PC_SETUP_BLOCKS]


async def chromium(browser: Browser, session: MediaSession, pid: str, camera: str | None = None) -> ChromiumPeer:
    page = await (await browser.new_context()).new_page()
    peer = ChromiumPeer(page, session.hub, session.router, pid, camera=camera)
    await peer.join()
    return peer


def video_in(stats: dict[str, Any], mid: str) -> dict[str, Any]:
    """The page's inbound-rtp stats of one video mid ({} until its first packet: a busy machine may take a while)."""
    return next((s for s in stats.get("inboundVideo", []) if s.get("mid") == mid), {})


def decode(frames: list[bytes]) -> tuple[int, int]:
    """(frames decoded, errors) through FFmpeg's VP8 decoder, from the first key frame on."""
    codec = av.CodecContext.create("vp8", "r")
    decoded = errors = 0
    for data in frames:
        try:
            decoded += len(codec.decode(av.Packet(data)))
        except av.error.FFmpegError:
            errors += 1
    return decoded, errors


async def test_a_subscriber_capped_at_layer_0_gets_a_quarter_of_the_frames_and_a_full_one_all(
    browser: Browser, make_session: Any
) -> None:
    # the ladder stays where it is put (no step up within the test), and the bot keeps what it receives
    session: MediaSession = make_session(MediaConfig(recover_after=600.0))
    a = await chromium(browser, session, "a", camera="L1T3")
    b = await chromium(browser, session, "b")
    await session.hub.add("bot", {"name": "bot"})
    bot = Bot("bot", session.router.attach(DirectChannel(session.hub, "bot")), session.config, audio=False,
              video=False, keep_frames=2000)
    session.bots["bot"] = bot
    await bot.join()
    # c: a publisher without temporal layers (a bot's VP8), whose video the capped bot gets as key frames only
    await session.hub.add("c", {"name": "c"})
    small = await asyncio.to_thread(video_clip, 320, 240, 15, 4, 120_000, 2)  # cheap for page b to decode
    c = Bot("c", session.router.attach(DirectChannel(session.hub, "c")), session.config, audio=False, clip=small)
    session.bots["c"] = c
    await c.join()
    hub = session.hub
    pub = hub._peers["a"].publications["camera"]
    c_pub = hub._peers["c"].publications["camera"]

    def subscribed(pid: str, publication: object) -> bool:
        return any(s.publication is publication for s in hub._peers[pid].slots)

    # (each subscriber's slot for c exists once its renegotiation is through: on a busy machine page b's lags)
    await wait_until(lambda: bot.receiving_from("a", ("camera",)) and bot.receiving_from("c", ("camera",))
                     and pub.frames_in > 20 and all(subscribed(p, q) for p in ("b", "bot") for q in (pub, c_pub)),
                     within=30)
    assert await a.scalability_modes() == ["L1T3"] and not a.errors and not b.errors
    slot_b = next(s for s in hub._peers["b"].slots if s.publication is pub)
    slot_bot = next(s for s in hub._peers["bot"].slots if s.publication is pub)
    slot_bot_c = next(s for s in hub._peers["bot"].slots if s.publication is c_pub)
    slot_b_c = next(s for s in hub._peers["b"].slots if s.publication is c_pub)
    await wait_until(lambda: bool(pub.layer_rates), within=10)  # measured at the hub's link check
    for _ in range(100):  # the page decodes a's video (its first key frame has arrived)
        if video_in(await b.stats(), str(slot_b.mid)).get("framesDecoded", 0) > 0:
            break
        await asyncio.sleep(0.2)
    else:
        raise AssertionError(f"b decodes nothing: {await b.stats()} {hub.stats()['participants']['b']}")

    # (a) the bot to the ladder's base-layer step: temporal layer 0 only
    bot_peer = hub._peers["bot"]
    await hub.set_link_level("bot", bot_peer.steps.index(STEP_BASE_LAYER))
    assert slot_bot.forwarder.layer_cap == 0 and slot_b.forwarder.layer_cap == vp8.ALL_LAYERS
    # c sends no layers: at this step its lower frame rate is its key frames (the full stream would undo the step)
    assert slot_bot_c.forwarder.keyframes_only and not slot_b_c.forwarder.keyframes_only
    await wait_until(lambda: slot_bot.forwarder.layer == 0, within=5)  # at the next frame start
    await asyncio.sleep(1.0)  # what was in flight before the switch has arrived

    got = bot.received[("a", "camera")]
    got_c = bot.received[("c", "camera")]
    assert got.kept is not None
    mid_b = str(slot_b.mid)
    start: dict[str, Any] = {
        "pub": pub.frames_in,
        "bot": got.frames,
        "kept": len(got.kept),
        "b": video_in(await b.stats(), mid_b),
        "keyframe_requests": pub.keyframe_requests,
        "bot_plis": slot_bot.keyframe_requests_in,
        "b_plis": slot_b.keyframe_requests_in,
        "b_forwarded": slot_b.forwarder.frames,
        "bot_dropped": slot_bot.forwarder.dropped,
        "layer_dropped": slot_bot.forwarder.layer_dropped,
        "c_frames": got_c.frames, "c_keyframes": got_c.keyframes, "c_pub": c_pub.frames_in,
    }
    await asyncio.sleep(8.0)
    b_end = video_in(await b.stats(), mid_b)
    pub_frames = pub.frames_in - start["pub"]
    bot_frames = got.frames - start["bot"]
    b_frames = b_end["framesDecoded"] - start["b"]["framesDecoded"]
    stats = hub.stats()
    bot_stats = stats["participants"]["bot"]
    b_stats = stats["participants"]["b"]
    a_out = (await a.stats()).get("outboundVideo", [{}])[0]
    decoded, errors = decode(list(got.kept))  # everything the bot received, from its first key frame on
    print(
        f"\npublisher a (Chromium, {a_out.get('scalabilityMode')}, {a_out.get('frameWidth')}x"
        f"{a_out.get('frameHeight')} at {a_out.get('framesPerSecond')} fps): {pub_frames} frames in 8 s; "
        f"layer rates (bit/s, layers 0..k) {pub.layer_rates}\n"
        f"(a) bot at '{bot_peer.step}', max_layer {bot_stats['max_layer']}: {bot_frames} frames "
        f"({bot_frames / pub_frames:.2f} of the publisher's), {slot_bot.forwarder.layer_dropped - start['layer_dropped']}"
        f" packets left out; all {len(got.kept)} frames received decoded by PyAV: {decoded} pictures, {errors} "
        f"errors; keyframe requests from the bot {slot_bot.keyframe_requests_in} (in the window "
        f"{slot_bot.keyframe_requests_in - start['bot_plis']}); forwarder dropped {slot_bot.forwarder.dropped} "
        f"skipped {slot_bot.forwarder.skipped}, waiting for a key frame {slot_bot.forwarder.need_start}; pacer rate "
        f"{bot_peer.pacer.rate} paced {bot_peer.pacer.paced} refused {bot_peer.pacer.refused}\n"
        f"(b) Chromium page at '{b_stats['link_step']}', max_layer {b_stats['max_layer']}: framesDecoded +{b_frames}"
        f" ({b_frames / pub_frames:.2f}), framesPerSecond {b_end.get('framesPerSecond')}, freezeCount "
        f"{b_end.get('freezeCount')}, pliCount {b_end.get('pliCount')}, nackCount {b_end.get('nackCount')}; "
        f"keyframe requests to a in the window {pub.keyframe_requests - start['keyframe_requests']}"
    )
    c_frames, c_keys = got_c.frames - start["c_frames"], got_c.keyframes - start["c_keyframes"]
    print(f"(a) from c (no layers): {c_frames} frames, {c_keys} of them key frames, of "
          f"{c_pub.frames_in - start['c_pub']} it published")
    # key frames only, and only as the bot's paced budget allows beside a's base layer, which comes first
    # (media/hub.py `_fit`): here the pace starts low and a's layer 0 takes most of it, so often none in 8 s.
    # The first frame of the window may be c's last full-rate frame from before the switch: aiortc's jitter buffer
    # hands a frame on only when the next frame's first packet arrives, here the next key frame (seen once: 4
    # frames, 3 key frames). Every frame after it is a key frame.
    assert got_c.kept is not None
    window = list(got_c.kept)[len(got_c.kept) - c_frames:] if c_frames else []
    assert all(passthrough.is_vp8_keyframe(f) for f in window[1:]), [passthrough.is_vp8_keyframe(f) for f in window]
    # (a) about a quarter of the frames (L1T3: every 4th frame is layer 0), all decodable, no key frame asked for
    assert 0.18 <= bot_frames / pub_frames <= 0.33, (bot_frames, pub_frames)
    assert errors == 0 and decoded == len(got.kept) and got.keyframes >= 1
    assert slot_bot.keyframe_requests_in <= 1 and slot_bot.keyframe_requests_in == start["bot_plis"]
    assert bot_stats["max_layer"] == 0 and bot_stats["link_step"] == STEP_BASE_LAYER
    assert slot_bot.forwarder.layer_dropped > start["layer_dropped"]
    # (b) the full stream, nothing left out: every frame the hub got from a went to b, and b decoded them.
    # (freezeCount, printed above, is Chromium's timing of frame arrivals: a busy machine makes freezes of its
    # own, so it is not asserted. A busy machine can also lose a packet on loopback, a full socket: b then asks for
    # a key frame, and a frame or two of a's are not decoded; one CI run decoded 0.74 of them with one PLI.)
    assert slot_b.forwarder.frames - start["b_forwarded"] >= 0.95 * pub_frames
    lost = b_end.get("pliCount", 0) > 0 or slot_bot.forwarder.dropped > start["bot_dropped"]
    assert b_frames >= (0.5 if lost else 0.85) * pub_frames, (b_frames, pub_frames, lost)
    assert slot_b.forwarder.layer_dropped == 0 and b_stats["max_layer"] is None
    if not lost:  # no keyframe request reached the publisher because of the layer cap
        assert pub.keyframe_requests == start["keyframe_requests"]
        assert slot_b.keyframe_requests_in == start["b_plis"]

    # back to full layers: the bot's frame rate comes back (switched up at a TID 0 or layer-sync frame)
    await hub.set_link_level("bot", bot_peer.link.top)
    await wait_until(lambda: slot_bot.forwarder.layer == vp8.ALL_LAYERS, within=30)
    before_pub, before_bot = pub.frames_in, got.frames
    await asyncio.sleep(4.0)
    back = (got.frames - before_bot) / max(pub.frames_in - before_pub, 1)
    decoded2, errors2 = decode(list(got.kept))
    print(f"back to full: bot at {back:.2f} of the publisher's frames; decode errors {errors2} ({decoded2} pictures)")
    # well above the capped quarter; not ~1.0, since on a busy machine the bot's receiving lags the publisher's
    # count at the window's edges (0.84-0.88 seen)
    assert back >= 0.6 and errors2 == 0 and slot_bot.forwarder.layer == vp8.ALL_LAYERS
    assert slot_bot.keyframe_requests_in <= 1
