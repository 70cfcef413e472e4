"""Typed media configuration (style.md 4): built by the caller, never read from the environment here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer


@dataclass(frozen=True)
class MediaConfig:
    # ICE servers in the browser's RTCIceServer shape: {"urls": [...], "username": ..., "credential": ...}.
    # Empty by default: never a public STUN server (see media-notes.md).
    ice_servers: list[dict[str, Any]] = field(default_factory=list)
    # Bounded queues on the media path, in frames per forwarded track (video ~1 s at 30 fps, audio 0.5 s).
    video_queue_frames: int = 30
    audio_queue_frames: int = 25
    # At most one keyframe request (PLI) per publisher track per this many seconds; later requests coalesce.
    keyframe_interval: float = 0.5
    # Weak links (P5), per subscriber, on its OWN loss (net of what the hub never received from publishers):
    # a step down the ladder (all video layers ... audio only) when the loss over `loss_window` seconds exceeds
    # `loss_threshold`; a step up after `recover_after` seconds at or below `recover_threshold` (hysteresis).
    # A step up undone within `probe_window` doubles the next wait (at most `recover_backoff_max`). Without a
    # new receiver report for `report_timeout` seconds the window is emptied (decisions use current data only).
    loss_threshold: float = 0.10
    loss_window: float = 5.0
    recover_threshold: float = 0.06
    recover_after: float = 8.0
    probe_window: float = 15.0
    recover_backoff_max: float = 60.0
    report_timeout: float = 3.0
    monitor_interval: float = 1.0
    # Minimum number of packets in the window before a loss decision is taken.
    loss_min_packets: int = 50
    # UDP receive buffer of each peer connection's socket (capped by the kernel's net.core.rmem_max).
    udp_receive_buffer: int = 4 * 1024 * 1024
    # Largest SDP accepted from a client, in characters.
    max_sdp_chars: int = 64_000

    def rtc_configuration(self) -> RTCConfiguration:
        servers = []
        for entry in self.ice_servers:
            servers.append(
                RTCIceServer(
                    urls=entry["urls"],
                    username=entry.get("username"),
                    credential=entry.get("credential"),
                )
            )
        return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
