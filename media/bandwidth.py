"""Bandwidth: a downlink estimate per subscriber, and the REMB each video publisher gets from the hub. Pure logic.

- `DownlinkEstimate` (one per subscriber, fed by `Hub._check_link` at each receiver-report check): a loss-based
  controller like Chromium's send-side estimator. Per interval with at least `bwe_min_packets` packets of net
  loss data (the subscriber's reported loss net of what the hub never received from the publishers, as for the
  ladder: `LinkMeter`): loss above `bwe_decrease_loss` lowers the estimate by loss/2, loss below
  `bwe_increase_loss` raises it by `bwe_increase` (8 %), in between it holds, unless `queue_free` says that loss
  is the link's own (then it climbs); bounded to [bwe_min, bwe_max]. A REMB the subscriber itself sends (a
  browser does when `goog-remb` is negotiated; it covers everything it receives) caps the estimate while it is
  fresh (`report_timeout`), except for the pacer's ceiling (`value(remb=False)`: while the hub paces, that REMB
  follows the pacing).
- `share` splits one subscriber's estimate between the video it receives at full rate (audio first).
- `layer_for` picks the highest temporal layer of a layered publisher that fits a subscriber's share (down at
  once, up one layer at a time with a margin); `publisher_rate_for` is what a subscriber capped at a layer lets
  the publisher send (its share divided by that layer's fraction of the whole: the cap, not the publisher, takes
  the cut).
- `PaceControl` (one per subscriber): the rate its video is paced at below the ladder's top step
  (media/pacer.py). The loss-based estimate cannot say how much a lossy link carries (5 % random loss holds it
  wherever it was), so pacing follows the queue instead: it starts at `pace_start` (the link has just proved too
  weak for full video) and, at each link check, moves on the highest round-trip time measured since the last
  one (`passthrough.on_round_trip`: each receiver report about its audio senders, unsmoothed) above the lowest
  seen since pacing began (the queue the hub's packets wait in): down by `pace_down` above `pace_queue_high`,
  up by `pace_up` below `pace_queue_low`; bounded to [pace_min, the estimate less its audio].
- `RembControl` (one per video publication): the bitrate told to the publisher is
  min(ceiling, the publisher's own uplink estimate, max(floor, min over its full-rate subscribers' shares)).
  Going down is immediate; going up is at most x`remb_step_up` per `remb_interval` (stepwise, no jump from the
  floor to the ceiling when a weak subscriber leaves). A subscriber at the ladder's key-frames-only or audio-only
  step does not count (it no longer receives this publisher's full video).
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

from media.config import MediaConfig
from media.vp8 import ALL_LAYERS

K = TypeVar("K", bound=Hashable)


class DownlinkEstimate:
    """One subscriber's downlink estimate in bit/s."""

    def __init__(self, config: MediaConfig) -> None:
        self._config = config
        self.bitrate = float(config.bwe_start)
        self.remb: int | None = None
        self._remb_at: float | None = None
        self._base: tuple[int, int] | None = None  # (lost, received) totals at the start of the interval
        self.last_loss: float | None = None
        self.updates = 0

    def reset(self) -> None:
        """A new peer connection: start again (the link may have changed)."""
        self.bitrate = float(self._config.bwe_start)
        self.remb, self._remb_at, self._base, self.last_loss = None, None, None, None

    def on_remb(self, bitrate: int, now: float) -> None:
        """The subscriber's own REMB (total for everything it receives)."""
        self.remb, self._remb_at = bitrate, now

    def update(self, lost: int, received: int, fresh: bool, now: float, random_loss: bool = False) -> None:
        """Running net totals from `LinkMeter`; acts once an interval holds `bwe_min_packets` packets.
        `random_loss` (`queue_free`): loss between the thresholds is the link's own, and the estimate climbs."""
        config = self._config
        base = self._base
        if base is None or lost < base[0] or received < base[1]:
            self._base = (lost, received)
            return
        if not fresh:
            return
        d_lost, d_received = lost - base[0], received - base[1]
        if d_lost + d_received < config.bwe_min_packets:
            return  # not enough data yet: keep the interval open
        self._base = (lost, received)
        loss = self.last_loss = d_lost / (d_lost + d_received)
        if loss > config.bwe_decrease_loss:
            self.bitrate *= 1 - loss / 2
        elif loss < config.bwe_increase_loss or random_loss:
            self.bitrate *= 1 + config.bwe_increase
        self.bitrate = min(max(self.bitrate, config.bwe_min), config.bwe_max)
        self.updates += 1

    def value(self, now: float, remb: bool = True) -> int:
        """The estimate, capped by the subscriber's REMB while that is fresh (`remb=False`: not; while the hub
        paces the subscriber's video, a browser's delay-based REMB reads the pacer's spreading of each frame as
        queueing and follows the paced rate down: 34 kbit/s on a 300 kbit/s link, docs/performance.md)."""
        estimate = self.bitrate
        if remb and self.remb is not None and self._remb_at is not None and now - self._remb_at <= self._config.report_timeout:
            estimate = min(estimate, max(self.remb, self._config.bwe_min))
        return round(estimate)


def queue_free(queue_delay: float | None, pace_rate: float | None, audio_streams: int, estimate: float,
               config: MediaConfig) -> bool:
    """The subscriber's loss is the link's own, not congestion: its video is paced (`pace_rate`), the round-trip
    times show no standing queue (`queue_delay` below `pace_queue_low`), and the estimate is within
    `bwe_free_headroom` of what it is being sent (paced video and the audio allowance: like Chromium's delay-based
    estimate, bounded by 1.5x the rate it receives, it does not climb on and on while far less is sent). Without
    this, 5 % random loss held the estimate wherever one overrun had left it (~98 kbit/s on a 300 kbit/s link)."""
    if queue_delay is None or pace_rate is None or queue_delay >= config.pace_queue_low:
        return False
    return estimate < config.bwe_free_headroom * (pace_rate + audio_streams * config.bwe_audio_allowance)


def share(estimate: int, audio_slots: int, video_slots: int, audio_allowance: int) -> int | None:
    """What one full-rate video stream of a subscriber may take; None without such a stream."""
    if video_slots <= 0:
        return None
    return max(estimate - audio_slots * audio_allowance, 0) // video_slots


def layer_for(share: int | None, rates: Sequence[int], current: int, margin: float) -> int:
    """The temporal layer cap for one subscriber of one layered publisher.

    `rates[k]`: the publisher's bit rate of layers 0..k together (measured); `current`: the cap now (ALL_LAYERS:
    none). Down at once to the highest layer that fits `share` (layer 0 at least: the ladder's lower steps take
    it from there); up one layer per call when the next one fits within `margin` of the share. The top layer seen
    is returned as ALL_LAYERS, so a layer the publisher adds later is not cut off."""
    if not rates or share is None:
        return ALL_LAYERS
    top = len(rates) - 1
    start = cap = min(current, top)
    while cap > 0 and rates[cap] > share:
        cap -= 1
    if cap == start and cap < top and rates[cap + 1] <= share * margin:
        cap += 1
    return ALL_LAYERS if cap >= top else cap


def publisher_rate_for(share: int, rates: Sequence[int], cap: int) -> int:
    """What a subscriber whose stream is capped at layer `cap` lets the publisher send: its share scaled up by
    the whole's size over the part it receives (uncapped, or without measurements: the share itself)."""
    if cap >= len(rates) - 1 or not rates or rates[cap] <= 0 or rates[-1] <= 0:
        return share
    return int(share * rates[-1] / rates[cap])


def base_layers_that_fit(budget: float, streams: Sequence[tuple[K, int, bool]], margin: float) -> set[K]:
    """At the ladder's base-layer step: which layered streams get their base layer within a subscriber's paced
    video `budget` (bit/s); the others get key frames only. `streams`: (key, rate of layer 0, gets it now), most
    important first (the mediator: what the weak party must still see). The first always keeps its base layer (the
    step exists for it; if even that is too much, the ladder's loss check takes the subscriber down to key frames
    only); each next one while it fits what is left, or, if it has not got it now, when it fits within `margin` of
    that, so a budget that wobbles around a stream's rate does not switch it back and forth (each switch up costs
    a key frame)."""
    chosen: set[K] = set()
    left = budget
    for i, (key, rate, has_it) in enumerate(streams):
        if i == 0 or (rate if has_it else rate / margin) <= left:
            chosen.add(key)
            left -= rate
    return chosen


class PaceControl:
    """One subscriber's video pace below the ladder's top step, in bit/s (None: not pacing)."""

    def __init__(self, config: MediaConfig) -> None:
        self._config = config
        self.rate: float | None = None
        self.base_rtt: float | None = None  # the lowest round-trip time since pacing began
        self.queue_delay: float | None = None  # the last reading: highest round-trip time of an interval - base
        self._worst: float | None = None  # the highest round-trip time since the last update

    def stop(self) -> None:
        """At the top step (or a new peer connection): no pacing; the next start measures afresh."""
        self.rate, self.base_rtt, self.queue_delay, self._worst = None, None, None, None

    def on_rtt(self, rtt: float) -> None:
        """A round-trip time (s) measured from one of the subscriber's receiver reports."""
        if rtt <= 0:
            return
        self.base_rtt = rtt if self.base_rtt is None else min(self.base_rtt, rtt)
        self._worst = rtt if self._worst is None else max(self._worst, rtt)

    def update(self, ceiling: float) -> float:
        """The rate from here (once per link check); `ceiling`: the downlink estimate less its audio."""
        c = self._config
        if self.rate is None:
            self.rate, self.base_rtt, self._worst = float(c.pace_start), None, None  # measure from now on
        elif self._worst is not None and self.base_rtt is not None:
            self.queue_delay = self._worst - self.base_rtt
            self._worst = None
            if self.queue_delay > c.pace_queue_high:
                self.rate *= c.pace_down
            elif self.queue_delay < c.pace_queue_low:
                self.rate *= c.pace_up
        self.rate = min(max(self.rate, c.pace_min), max(ceiling, c.pace_min))
        return self.rate


class RembControl:
    """The REMB bitrate told to one video publisher."""

    def __init__(self, config: MediaConfig) -> None:
        self._config = config
        self.uplink: int | None = None  # the hub's own receive-side estimate of the publisher's uplink
        self.downlink: int | None = None  # min share over full-rate subscribers; None: none counts
        self.value: int | None = None  # the last value told to the publisher
        self.sent = 0

    def desired(self) -> int:
        config = self._config
        bitrate = config.remb_ceiling
        if self.downlink is not None:
            bitrate = min(bitrate, max(config.remb_floor, self.downlink))
        if self.uplink is not None:
            bitrate = min(bitrate, self.uplink)  # the publisher's own link: not floored
        return int(bitrate)

    def tick(self) -> int:
        """The value to send now (every `remb_interval`): down at once, up by at most x`remb_step_up`."""
        bitrate = self.desired()
        if self.value is not None and bitrate > self.value:
            bitrate = min(bitrate, int(self.value * self._config.remb_step_up))
        self.value = bitrate
        self.sent += 1
        return bitrate

    def on_uplink(self, estimate: int) -> int:
        """The receive-side estimator's new value: what its own REMB should say (never above the last tick)."""
        self.uplink = estimate
        bitrate = self.desired()
        if self.value is not None:
            bitrate = min(bitrate, self.value)
        self.value = bitrate
        return bitrate
