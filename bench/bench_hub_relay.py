"""Benchmark baseline only: the media protocol of media.hub.Hub served with aiortc's MediaRelay.

Every publisher's tracks are decoded once (aiortc's receiver) and re-encoded once per subscriber (each sender
has its own VP8/Opus encoder): what aiortc offers out of the box. Not for production use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamTrack

from media.config import MediaConfig
from media.peer import PUBLISH_SOURCES, codec_preferences

Send = Callable[[str, str, dict[str, Any]], Awaitable[None]]


class _Peer:
    def __init__(self, pid: str) -> None:
        self.pid = pid
        self.pc: RTCPeerConnection | None = None
        self.publish: dict[str, Any] = {}
        self.tracks: dict[str, MediaStreamTrack] = {}
        self.mapping: dict[str, dict[str, Any]] = {}
        self.pending_slots: list[tuple[Any, str, str]] = []
        self.want: list[_Peer] = []
        self.outstanding = False


class RelayHub:
    def __init__(self, session_id: str, config: MediaConfig, send: Send) -> None:
        self.session_id = session_id
        self.config = config
        self._send = send
        self.relay = MediaRelay()
        self.peers: dict[str, _Peer] = {}

    async def add(self, pid: str, label: dict[str, Any] | None = None) -> None:
        self.peers.setdefault(pid, _Peer(pid))

    async def remove(self, pid: str) -> None:
        peer = self.peers.pop(pid, None)
        if peer is not None and peer.pc is not None:
            await peer.pc.close()

    async def close(self) -> None:
        for pid in list(self.peers):
            await self.remove(pid)

    async def handle(self, pid: str, event: str, payload: dict[str, Any]) -> dict[str, Any]:
        peer = self.peers[pid]
        if event == "media:join":
            peer.pc = RTCPeerConnection(self.config.rtc_configuration())
            for source, kind in PUBLISH_SOURCES:
                transceiver = peer.pc.addTransceiver(kind, direction="recvonly")
                transceiver.setCodecPreferences(codec_preferences(kind))
                peer.publish[source] = transceiver
            peer.want = [p for p in self.peers.values() if p is not peer and p.tracks]
            await self._sync(peer)
        elif event == "media:answer":
            assert peer.pc is not None
            await peer.pc.setRemoteDescription(RTCSessionDescription(payload["sdp"], "answer"))
            peer.outstanding = False
            if not peer.tracks:
                peer.tracks = {
                    s: t.receiver.track for s, t in peer.publish.items() if t.currentDirection == "recvonly"
                }
                for other in self.peers.values():
                    if other is not peer and other.pc is not None:
                        other.want.append(peer)
                        await self._sync(other)
            await self._sync(peer)
        return {"ok": True}

    async def _sync(self, peer: _Peer) -> None:
        if peer.outstanding or peer.pc is None or (not peer.want and peer.pc.localDescription is not None):
            return
        for publisher in peer.want:
            for source, track in publisher.tracks.items():
                transceiver = peer.pc.addTransceiver(self.relay.subscribe(track), direction="sendonly")
                transceiver.setCodecPreferences(codec_preferences(track.kind))
                peer.pending_slots.append((transceiver, publisher.pid, source))
        peer.want = []
        await peer.pc.setLocalDescription(await peer.pc.createOffer())
        peer.outstanding = True
        for transceiver, owner, source in peer.pending_slots:
            peer.mapping[transceiver.mid] = {
                "participant": owner,
                "source": source,
                "kind": transceiver.kind,
                "active": True,
            }
        peer.pending_slots = []
        offer = {
            "type": "offer",
            "sdp": peer.pc.localDescription.sdp,
            "publish": {s: t.mid for s, t in peer.publish.items()},
            "tracks": dict(peer.mapping),
        }
        await self._send(peer.pid, "media:offer", offer)
