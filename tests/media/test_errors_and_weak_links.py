"""Bad client input gets clear errors and the hub keeps working; weak links go audio only and come back."""

import pytest
from aiortc import RTCPeerConnection, RTCSessionDescription

from media.bots import Bot
from media.channels import DirectChannel
from media.config import MediaConfig
from media.errors import UnknownEvent, UnknownParticipant
from media.fixtures import video_clip
from media.peer import check_answer
from mediation.errors import OneDoorError
from tests.media.conftest import PC_SETUP_BLOCKS, wait_until

# every test joins real peer connections: see PC_SETUP_BLOCKS in conftest
pytestmark = [pytest.mark.timeout(120), PC_SETUP_BLOCKS]


class RawClient:
    """A hand-driven aiortc client, to send answers a well-behaved bot never would."""

    def __init__(self, session, pid):
        self.session, self.pid = session, pid
        self.channel = session.router.attach(DirectChannel(session.hub, pid))
        self.offers: list[dict] = []
        self.channel.on("media:offer", self.offers.append)
        self.pc = RTCPeerConnection(session.config.rtc_configuration())

    async def answer_sdp(self) -> str:
        await wait_until(lambda: bool(self.offers))
        await self.pc.setRemoteDescription(RTCSessionDescription(self.offers[-1]["sdp"], "offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp


async def test_bad_sdp_and_bad_events_get_clear_errors_and_the_session_survives(make_session):
    s = make_session()
    await s.join("m")
    await s.hub.add("x")
    raw = RawClient(s, "x")
    call = raw.channel.call

    ack = await call("media:answer", {"sdp": "v=0"})
    assert ack == {"ok": False, "error": {"code": "negotiation_conflict", "message": ack["error"]["message"]}}
    assert (await call("media:join", {}))["ok"]
    good = await raw.answer_sdp()

    for bad, code in [
        ("", "malformed_sdp"),
        ("hello", "malformed_sdp"),
        (None, "malformed_sdp"),
        ("v=0\r\nm=video x\r\n", "malformed_sdp"),
        (good.replace("VP8/90000", "H264/90000"), "unsupported_codec"),
        (good.replace("opus/48000/2", "PCMU/8000"), "unsupported_codec"),
        ("v=0\r\n" + "a=x\r\n" * 20000, "sdp_too_large"),
    ]:
        ack = await call("media:answer", {"type": "answer", "sdp": bad})
        assert ack["ok"] is False and ack["error"]["code"] == code, (bad[:40] if bad else bad, ack)

    for event, payload, code in [
        ("media:audio-only", {"enabled": "yes"}, "invalid_input"),
        ("media:keyframe", {"mid": "nope"}, "unknown_mid"),
    ]:
        assert (await call(event, payload))["error"]["code"] == code
    with pytest.raises(UnknownEvent):
        await s.hub.handle("x", "media:nonsense", {})
    with pytest.raises(UnknownParticipant):
        await s.hub.handle("stranger", "media:join", {})
    with pytest.raises(OneDoorError):
        await s.hub.handle("x", "media:join", ["not", "a", "dict"])

    # the outstanding offer can still be answered properly, and media flows both ways
    assert (await call("media:answer", {"type": "answer", "sdp": good})) == {"ok": True}
    a = await s.join("a")
    await wait_until(lambda: a.receiving_from("m") and s.bots["m"].receiving_from("a"))
    await raw.pc.close()


def test_check_answer_accepts_a_rejected_screen_section_without_codecs():
    sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=video 0 UDP/TLS/RTP/SAVPF 0\r\na=inactive\r\n"
    assert len(check_answer(sdp, 10_000).media) == 1


async def test_audio_only_on_request_stops_video_to_that_subscriber_only(make_session):
    s = make_session()
    for pid in ("m", "b"):
        await s.join(pid)
    await s.flowing()
    assert await s.bots["b"].request_audio_only(True) == {"ok": True, "audio_only": True}
    await s.phase("audio-only", 1.0)
    got_b, got_m = s.got("b", "audio-only"), s.got("m", "audio-only")
    assert got_b["m"]["audio"]["packets"] > 0 and got_b["m"]["camera"]["packets"] == 0
    assert got_m["b"]["camera"]["packets"] > 0  # b still sends video to the others
    await s.bots["b"].request_audio_only(False)
    await s.phase("video-again", 1.0)
    assert s.got("b", "video-again")["m"]["camera"]["frames"] > 0


async def test_sustained_loss_switches_to_audio_only_and_recovery_brings_video_back(make_session):
    config = MediaConfig(
        loss_window=1.5, recover_after=1.0, monitor_interval=0.25, loss_min_packets=20, loss_threshold=0.10
    )
    s = make_session(config)
    for pid in ("m", "b"):
        await s.join(pid)
    await s.flowing()
    b = s.bots["b"]
    b.set_downlink_loss([True, False, False])  # deterministic: one packet in three lost on b's downlink
    await wait_until(lambda: b.audio_only_events, within=25)
    assert b.audio_only_events[0]["enabled"] is True and b.audio_only_events[0]["reason"] == "loss"
    assert b.audio_only_events[0]["loss"] > 0.10
    assert s.hub.routing.is_audio_only("b") and not s.hub.routing.is_audio_only("m")
    await s.phase("degraded", 1.0)
    assert s.got("b", "degraded")["m"]["camera"]["packets"] == 0

    b.set_downlink_loss(None)
    await wait_until(lambda: len(b.audio_only_events) >= 2, within=25)
    assert b.audio_only_events[1]["enabled"] is False and b.audio_only_events[1]["reason"] == "recovered"
    await s.phase("recovered", 1.0)
    # Video packets flow to b again. (b's aiortc jitter buffer may still wait for a packet lost at the very end
    # of the lossy period, which only its 512-packet overflow clears: a client-side matter, so count packets.)
    assert s.got("b", "recovered")["m"]["camera"]["packets"] > 0
    assert s.got("b", "recovered")["m"]["audio"]["frames"] > 0


async def test_a_weak_publisher_does_not_degrade_clean_subscribers_and_a_weak_subscriber_still_is(make_session):
    """Loss attribution (issue 15 item 2): p's uplink loses one packet in four; m and c, on clean links, receive
    p's stream with those gaps but stay at full video; c's own lossy downlink still degrades c alone."""
    config = MediaConfig(
        loss_window=1.5, recover_after=1.0, monitor_interval=0.25, loss_min_packets=20, loss_threshold=0.10
    )
    s = make_session(config)
    for pid in ("m", "p", "c"):
        await s.join(pid)
    await s.flowing()
    s.bots["p"].set_uplink_loss([True, False, False, False])
    await s.phase("weak-publisher", 3.0)  # two loss windows of reports
    for pid in ("m", "c"):
        assert s.got(pid, "weak-publisher")["p"]["audio"]["frames"] > 0
        assert s.got(pid, "weak-publisher")["p"]["camera"]["packets"] > 0
        assert s.bots[pid].audio_only_events == []
        assert not s.hub.routing.is_audio_only(pid)
    missing = sum(slot.forwarder.upstream_missing for pid in ("m", "c") for slot in s.hub._peers[pid].slots)
    assert missing > 0  # the gaps were there, and were attributed to p's uplink
    c = s.bots["c"]
    c.set_downlink_loss([True, False, False])
    await wait_until(lambda: c.audio_only_events, within=25)
    assert c.audio_only_events[0]["reason"] == "loss"
    assert not s.hub.routing.is_audio_only("m") and s.bots["m"].audio_only_events == []


async def test_at_the_key_frames_step_video_is_paced_and_every_publisher_is_still_seen(make_session):
    """Below the top step a subscriber's video is paced (media/pacer.py) and the hub asks one publisher at a time
    for a key frame: the weak subscriber keeps seeing both publishers, at the key frame rate its pace allows."""
    s = make_session(MediaConfig(monitor_interval=0.25, keyframe_only_interval=1.0, pace_start=300_000))
    for pid in ("m", "c", "w"):
        await s.join(pid)
    await s.flowing()
    peer = s.hub._peers["w"]

    def asked() -> dict[str, int]:
        st = s.hub.stats()["participants"]
        return {p: st[p]["publications"]["camera"]["keyframe_requests"] for p in ("m", "c")}

    before = asked()
    await s.hub.set_link_level("w", peer.steps.index("keyframes_only"))
    await s.phase("keyframes", 6.0)
    got = s.got("w", "keyframes")
    stats = s.hub.stats()["participants"]["w"]
    after = asked()
    # the hub kept asking each publisher for key frames (a browser sends them only when asked), not just once at
    # the switch (the forwarders' wall clock was once compared with the monotonic one, so it never asked again)
    assert all(after[p] - before[p] >= 3 for p in ("m", "c")), (before, after)
    assert stats["link_step"] == "keyframes_only" and stats["pace_rate"] is not None
    assert stats["video_paced"] > 0  # key frames were spread out, not sent as a burst
    assert got["m"]["camera"]["frames"] > 0 and got["c"]["camera"]["frames"] > 0  # both still seen
    assert got["m"]["audio"]["frames"] > 0 and got["c"]["audio"]["frames"] > 0
    assert all(slot["keyframes_out"] > 0 for slot in stats["slots"] if slot["kind"] == "video")
    await s.hub.set_link_level("w", peer.link.top)  # back at full video: nothing paced from here on
    await wait_until(lambda: s.hub.stats()["participants"]["w"]["pace_rate"] is None, within=5)


async def test_at_the_key_frames_step_a_publisher_that_does_not_answer_does_not_keep_the_others_unasked(make_session):
    """Paced, the hub asks one publisher at a time for a key frame. When one never answers (here its camera has
    stopped; a starved phone is another), the turn passes on: the others are still asked, and still seen."""
    s = make_session(MediaConfig(monitor_interval=0.25, keyframe_only_interval=1.0, pace_start=300_000))
    await s.join("m")
    # c's camera sends a key frame by itself only every 4 s (a browser: only when asked), so c is due often
    await s.hub.add("c", {"name": "c"})
    s.bots["c"] = Bot("c", s.router.attach(DirectChannel(s.hub, "c")), s.config, clip=video_clip(gop_seconds=4))
    await s.bots["c"].join()
    await s.join("w")
    await s.flowing()
    peer = s.hub._peers["w"]

    def asked() -> dict[str, int]:
        st = s.hub.stats()["participants"]
        return {p: st[p]["publications"]["camera"]["keyframe_requests"] for p in ("m", "c")}

    s.bots["m"].video_track.pause(True)  # m's camera stops: m sends no key frame however often it is asked
    await s.hub.set_link_level("w", peer.steps.index("keyframes_only"))
    before = asked()
    await s.phase("keyframes", 8.0)  # ~4 turns each
    after, got = asked(), s.got("w", "keyframes")
    assert s.hub.stats()["participants"]["w"]["pace_rate"] is not None  # paced: one publisher asked at a time
    print("key frame requests before, after:", before, after)
    assert after["c"] - before["c"] >= 2 and after["m"] - before["m"] >= 2, (before, after)  # turns go round
    assert got["c"]["camera"]["frames"] > 0 and got["m"]["camera"]["frames"] == 0
