"""Three (or more) real aiortc bots through one Hub over loopback: forwarding, caucus, keyframes, cleanup."""

import asyncio
import threading
from typing import Any

import aiortc.rtcrtpreceiver
import av
import pytest

from media import passthrough
from media.config import MediaConfig
from tests.media.conftest import PC_SETUP_BLOCKS, wait_until

# every test joins real peer connections: see PC_SETUP_BLOCKS in conftest
pytestmark = [pytest.mark.timeout(40), PC_SETUP_BLOCKS]

SOURCES = ("audio", "camera")


class HoldingSink:
    """A queueing frame sink (media.forward.QueueingSink) that keeps every frame until the test clears them."""

    def __init__(self) -> None:
        self.frames: list[bytes] = []

    def __call__(self, owner: str, source: str, data: bytes, timestamp: int, keyframe: bool) -> None:
        self.frames.append(data)

    @property
    def backlog(self) -> int:
        return len(self.frames)


def assert_flows(got, publishers):
    for publisher in publishers:
        for source in SOURCES:
            counts = got.get(publisher, {}).get(source, {})
            assert counts.get("packets", 0) > 0 and counts.get("frames", 0) > 0, (publisher, source, got)


def assert_silent(got, publishers):
    for publisher in publishers:
        for source in SOURCES:
            counts = got.get(publisher, {}).get(source, {"packets": 0, "frames": 0})
            assert counts["packets"] == 0 and counts["frames"] == 0, (publisher, source, got)


async def test_three_bots_each_receive_the_other_two_without_any_decoding(make_session, monkeypatch):
    decoders: list[object] = []
    real_get_decoder = aiortc.rtcrtpreceiver.get_decoder

    def counting_get_decoder(codec: Any) -> Any:  # counts decoders made; still makes them
        decoders.append(codec)
        return real_get_decoder(codec)

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", counting_get_decoder)
    s = make_session()
    for pid in ("m", "a", "b"):
        await s.join(pid)
    await s.flowing()
    await s.phase("joint", 1.5)
    for pid in ("m", "a", "b"):
        got = s.got(pid, "joint")
        assert set(got) == {"m", "a", "b"} - {pid}
        assert_flows(got, set(got))
        # roughly real time: 30 fps video and 50 packets/s audio for 1.5 s, from each publisher
        for publisher in got:
            assert got[publisher]["camera"]["frames"] > 20 and got[publisher]["audio"]["frames"] > 40

    stats = s.hub.stats()
    for pid, p in stats["participants"].items():
        assert p["publications"]["camera"]["frames_in"] > 0
        assert p["publications"]["camera"]["subscribers"] == 2
        assert {slot["participant"] for slot in p["slots"]} == {"m", "a", "b"} - {pid}
        assert all(slot["packets_out"] > 0 and slot["frames_out"] > 0 for slot in p["slots"])
        assert s.hub._peers[pid].fast_sockets > 0  # SRTP taken straight from the socket callback
        for source in ("audio", "camera"):
            receiver = s.hub._peers[pid].publications[source].receiver
            assert p["publications"][source]["packets_in"] > 0  # packets were forwarded as they came...
            assert passthrough.tapped_frames(receiver) == 0  # ...no frame assembled (no recorder)...
            assert receiver.track._queue.qsize() == 0  # ...and nothing went to the decoded-frame queue
    assert decoders == []  # no decoder was ever created on the hub (nor in the bots)


async def test_caucus_isolates_both_directions_and_closing_restores_all_flows(make_session):
    s = make_session()
    for pid in ("m", "a", "b"):
        await s.join(pid)
    await s.flowing()
    await s.phase("joint", 1.0)
    for pid in ("m", "a", "b"):
        assert_flows(s.got(pid, "joint"), {"m", "a", "b"} - {pid})

    s.hub.routing.open_caucus("side-a", ["m", "a"])
    await s.hub.apply_routing()
    await s.phase("caucus", 1.5)
    assert_silent(s.got("b", "caucus"), ["m", "a"])
    assert_silent(s.got("m", "caucus"), ["b"])
    assert_silent(s.got("a", "caucus"), ["b"])
    assert_flows(s.got("m", "caucus"), ["a"])
    assert_flows(s.got("a", "caucus"), ["m"])
    tracks = s.bots["b"].tracks
    assert {t["participant"] for t in tracks.values() if not t["active"]} == {"m", "a"}

    s.hub.routing.close_caucus("side-a")
    await s.hub.apply_routing()
    await s.phase("rejoint", 1.5, settle=0.6)
    for pid in ("m", "a", "b"):
        assert_flows(s.got(pid, "rejoint"), {"m", "a", "b"} - {pid})
    # the resumed video starts with a keyframe (requested from the publisher when forwarding resumed)
    since_close = s.bots["b"].delta("caucus:end", "rejoint:end")
    assert since_close["m"]["camera"]["keyframes"] >= 1 and since_close["a"]["camera"]["keyframes"] >= 1


async def test_newcomer_gets_a_decodable_keyframe_on_request(make_session):
    s = make_session()
    await s.join("m")
    await s.join("a")
    await s.flowing()
    plis = {p: s.hub._peers[p].publications["camera"].plis_sent for p in ("m", "a")}
    requests = {p: s.bots[p].video_track.keyframe_requests for p in ("m", "a")}
    newcomer = await s.join("b")
    await wait_until(lambda: newcomer.receiving_from("m") and newcomer.receiving_from("a"), within=20)
    for publisher in ("m", "a"):
        counter = newcomer.received[(publisher, "camera")]
        # video starts at a keyframe: the newcomer's first frame from each publisher is that keyframe...
        assert counter.first_keyframe is not None and counter.first_frame_at == counter.first_keyframe_at
        decoder = av.CodecContext.create("vp8", "r")
        (frame,) = decoder.decode(av.Packet(counter.first_keyframe))
        assert (frame.width, frame.height) == (640, 480)
        # ...asked of the publisher when the newcomer's slot started (a PLI forwarded to it), not left to the
        # clip's 2 s keyframe cadence
        assert s.hub._peers[publisher].publications["camera"].plis_sent > plis[publisher]
        assert s.bots[publisher].video_track.keyframe_requests > requests[publisher]


async def test_keyframe_requests_are_rate_limited_per_publisher(make_session):
    # a 3 s interval: the 20 requests below (in-process calls) surely fall within one interval, even on a busy
    # machine, so they give at most two PLIs (one at once or after the interval, the rest coalesced into one)
    s = make_session(MediaConfig(keyframe_interval=3.0))
    await s.join("m")
    b = await s.join("b")
    await s.flowing()
    mid = next(mid for mid, t in b.tracks.items() if t["participant"] == "m" and t["source"] == "camera")
    camera = s.hub._peers["m"].publications["camera"]
    await wait_until(lambda: camera._pending is None, within=20)  # the PLIs of the join are out
    before, requests_before = camera.plis_sent, camera.keyframe_requests
    for _ in range(20):
        assert (await b.channel.call("media:keyframe", {"mid": mid}))["ok"]
    assert camera.keyframe_requests - requests_before >= 20
    assert camera.plis_sent - before <= 1  # at most one at once; the others wait for the interval to end
    await wait_until(lambda: camera._pending is None and camera.plis_sent > before, within=20)
    assert 1 <= camera.plis_sent - before <= 2  # 20 requests, coalesced


async def test_leaving_and_closing_free_peer_connections_tasks_and_queues(make_session):
    baseline_tasks = len(asyncio.all_tasks())
    baseline_threads = threading.active_count()
    s = make_session()
    for pid in ("m", "a", "b"):
        await s.join(pid)
    await s.flowing()
    assert s.hub.stats()["peer_connections"] == 3

    leaver = s.bots.pop("b")
    await leaver.close()
    await s.hub.remove("b")
    stats = s.hub.stats()
    assert stats["peer_connections"] == 2 and set(stats["participants"]) == {"m", "a"}
    for p in stats["participants"].values():
        assert [slot for slot in p["slots"] if slot["participant"] == "b"] == []
    # the one queue on the hub's side is a queueing frame sink's (the recorder participant's): stats count it
    holder = HoldingSink()
    s.hub.add_sink("holder", holder)
    await wait_until(lambda: holder.backlog > 0, within=20)
    assert s.hub.stats()["queued_frames"] == holder.backlog
    holder.frames.clear()
    assert s.hub.stats()["queued_frames"] == 0
    s.hub.remove_sink("holder")
    await s.phase("after-leave", 1.0)
    assert_flows(s.got("m", "after-leave"), ["a"])

    await s.close()
    stats = s.hub.stats()
    assert stats["peer_connections"] == 0 and stats["tasks"] == 0 and stats["queued_frames"] == 0
    await wait_until(lambda: len(asyncio.all_tasks()) <= baseline_tasks, within=5)
    await wait_until(lambda: threading.active_count() <= baseline_threads, within=5)
    with pytest.raises(Exception, match="closed"):
        await s.hub.add("late")


async def test_rejoin_with_a_new_peer_connection_keeps_the_session_flowing(make_session):
    s = make_session()
    for pid in ("m", "a"):
        await s.join(pid)
    await s.flowing()
    a = s.bots["a"]
    old_pc = a.pc
    await a.join()  # network change: a new peer connection, same participant
    assert a.pc is not old_pc and old_pc.connectionState == "closed"
    await s.phase("after-rejoin", 1.0, settle=1.0)
    assert_flows(s.got("m", "after-rejoin"), ["a"])
    assert_flows(s.got("a", "after-rejoin"), ["m"])
    assert s.hub.stats()["peer_connections"] == 2
