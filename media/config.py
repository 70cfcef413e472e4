"""Typed media configuration (style.md 4): built by the caller, never read from the environment here."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCIceServer

from media.turn import ordered_servers


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
    # a step down the ladder (all video, key frames only, audio only) when the loss over `loss_window` seconds exceeds
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
    # The ladder's middle step (key frames only) between full video and audio only; False: video or audio only.
    keyframes_step: bool = True
    # The ladder's step between full video and key frames only: temporal layer 0 only from publishers that send
    # temporal layers (VP8 L1T3: a quarter of their frame rate). Skipped for a subscriber that receives no such
    # publisher (the step would change nothing). False: no such step.
    temporal_step: bool = True
    # At full video, each layered publisher's stream to a subscriber is capped at the highest temporal layer whose
    # measured rate (layers 0..k together) fits that subscriber's share of its loss-based downlink estimate:
    # down at once, up one layer per link check once the next layer fits within `layer_up_margin` of the share.
    layer_up_margin: float = 0.85
    # At the ladder's key-frames-only step, ask a publisher for a key frame when its last one is this old (s).
    keyframe_only_interval: float = 2.0
    # Below the ladder's top step a subscriber's video is paced (media/pacer.py) so key frames no longer bury the
    # audio behind them: from `pace_start` bit/s, down by `pace_down` while the round-trip time stands more than
    # `pace_queue_high` s above the lowest seen since pacing began, up by `pace_up` while it is within
    # `pace_queue_low` s; never below `pace_min` nor above the downlink estimate less its audio
    # (media/bandwidth.py PaceControl). False: no pacing (packets are sent as they come).
    pacing: bool = True
    pace_start: int = 100_000
    pace_min: int = 60_000
    pace_queue_high: float = 0.15
    pace_queue_low: float = 0.06
    pace_down: float = 0.8
    pace_up: float = 1.06
    # Minimum number of packets in the window before a loss decision is taken.
    loss_min_packets: int = 50
    # Bandwidth (issue 15, media/bandwidth.py): a loss-based downlink estimate per subscriber (bit/s), like
    # Chromium's: per interval of at least `bwe_min_packets` packets, loss > `bwe_decrease_loss` lowers it by
    # loss/2, loss < `bwe_increase_loss` raises it by `bwe_increase`; bounded to [bwe_min, bwe_max]; starts at
    # `bwe_start` (no probing: start high, come down on loss). A subscriber's own REMB caps it (not the pacer's
    # ceiling). While its video is paced and shows no standing queue, loss between the thresholds raises it too.
    bwe_start: int = 2_500_000
    bwe_min: int = 30_000
    bwe_max: int = 2_500_000
    bwe_decrease_loss: float = 0.10
    bwe_increase_loss: float = 0.02
    bwe_increase: float = 0.08
    bwe_min_packets: int = 20
    # While paced with no standing queue, moderate loss raises the estimate only up to this times what is sent.
    bwe_free_headroom: float = 1.5
    # Each video publisher gets a REMB every `remb_interval` s: min over the subscribers receiving its video at
    # full rate of their estimate's share (`bwe_audio_allowance` per audio stream first, the rest split between
    # their full-rate video streams), never below `remb_floor` (one weak subscriber does not starve the others'
    # view: 250 kbit/s is aiortc's VP8 encoder minimum and still a usable VGA picture; below it the ladder acts),
    # never above `remb_ceiling` nor the hub's own estimate of the publisher's uplink. Up by at most
    # x`remb_step_up` per interval, down at once.
    remb_floor: int = 250_000
    remb_ceiling: int = 2_500_000
    remb_interval: float = 0.5
    remb_step_up: float = 1.2
    bwe_audio_allowance: int = 50_000
    # UDP receive buffer of each peer connection's socket (capped by the kernel's net.core.rmem_max).
    udp_receive_buffer: int = 4 * 1024 * 1024
    # Largest SDP accepted from a client, in characters.
    max_sdp_chars: int = 64_000
    # CA certificates (PEM file) that a `turns:` server's certificate must chain to; None: the system's CAs.
    turn_ca_file: str | None = None

    def with_ice_servers(self, servers: list[dict[str, Any]]) -> MediaConfig:
        """This configuration with `servers` added (the per-join TURN credentials of `media:ice`)."""
        return replace(self, ice_servers=[*self.ice_servers, *servers])

    def turn_tls_context(self) -> ssl.SSLContext | None:
        """The TLS context for `turns:` servers when a CA is configured (else aioice uses the system's CAs)."""
        if self.turn_ca_file is None:
            return None
        return ssl.create_default_context(cafile=self.turn_ca_file)

    def rtc_configuration(self) -> RTCConfiguration:
        servers = []
        for entry in ordered_servers(self.ice_servers):  # aiortc uses only the first TURN URL: the best one
            servers.append(
                RTCIceServer(
                    urls=entry["urls"],
                    username=entry.get("username"),
                    credential=entry.get("credential"),
                )
            )
        return RTCConfiguration(iceServers=servers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class HostAddressPolicy:
    """Which local addresses this process offers as ICE host candidates (`onedoor serve --ice-network/
    --ice-exclude`; media/passthrough.py restrict_host_addresses applies it to every peer connection).

    aioice offers every address of every interface (but 127.0.0.1). On a host where interfaces come and go
    (containers' veth pairs, a VPN, a test rig's namespaces) a peer connection can settle on an address that
    later disappears: aioice never moves to another pair, so that participant's media stops for good. An address
    is offered when it is in `include` (or `include` is empty) and not in `exclude`."""

    include: tuple[Network, ...] = ()
    exclude: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, include: Iterable[str] = (), exclude: Iterable[str] = ()) -> HostAddressPolicy:
        """From CIDR strings ("192.0.2.0/24", "10.76.0.0/16"); ValueError names a malformed one."""
        return cls(tuple(ipaddress.ip_network(n, strict=False) for n in include),
                   tuple(ipaddress.ip_network(n, strict=False) for n in exclude))

    def allows(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        return ((not self.include or any(ip in n for n in self.include))
                and not any(ip in n for n in self.exclude))

    def but_not(self, network: str) -> HostAddressPolicy:
        """This policy with `network` taken out of the excluded networks (a test rig's own addresses)."""
        own = ipaddress.ip_network(network, strict=False)
        kept: list[Network] = []
        for n in self.exclude:
            if own.version == n.version and own.subnet_of(n):  # type: ignore[arg-type]
                kept.extend(n.address_exclude(own))  # type: ignore[arg-type]
            elif not (own.version == n.version and n.subnet_of(own)):  # type: ignore[arg-type]
                kept.append(n)
        return replace(self, exclude=tuple(kept))
