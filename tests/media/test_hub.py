"""Three (or more) real aiortc bots through one Hub over loopback: forwarding, caucus, keyframes, cleanup."""

import asyncio
import threading
from typing import Any

import aiortc.rtcrtpreceiver
import av
import pytest

from media import passthrough
from tests.media.conftest import wait_until

pytestmark = pytest.mark.timeout(40)

SOURCES = ("audio", "camera")


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


async def test_newcomer_gets_a_decodable_keyframe_within_a_second(make_session):
    s = make_session()
    await s.join("m")
    await s.join("a")
    await s.flowing()
    newcomer = await s.join("b")
    await wait_until(lambda: newcomer.receiving_from("m") and newcomer.receiving_from("a"), within=5)
    for publisher in ("m", "a"):
        counter = newcomer.received[(publisher, "camera")]
        assert counter.first_keyframe_at - newcomer.joined_at < 1.0
        decoder = av.CodecContext.create("vp8", "r")
        (frame,) = decoder.decode(av.Packet(counter.first_keyframe))
        assert (frame.width, frame.height) == (640, 480)
    # keyframes came on request (PLI forwarded to the publishers), not from the 2 s keyframe cadence
    assert s.hub.stats()["participants"]["m"]["publications"]["camera"]["plis_sent"] >= 1
    assert s.bots["m"].video_track.keyframe_requests >= 1


async def test_keyframe_requests_are_rate_limited_per_publisher(make_session):
    s = make_session()
    await s.join("m")
    b = await s.join("b")
    await s.flowing()
    await asyncio.sleep(0.6)
    mid = next(mid for mid, t in b.tracks.items() if t["participant"] == "m" and t["source"] == "camera")
    camera = s.hub._peers["m"].publications["camera"]
    before = camera.plis_sent
    for _ in range(20):
        assert (await b.channel.call("media:keyframe", {"mid": mid}))["ok"]
    await asyncio.sleep(0.7)
    assert 1 <= camera.plis_sent - before <= 2  # one now, the other 19 coalesced into one 500 ms later


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
        assert all(slot["queued"] <= 30 for slot in p["slots"])
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
