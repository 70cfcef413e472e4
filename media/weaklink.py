"""Weak-link detection (P5) from the receiver reports a subscriber sends about the hub's senders. Pure logic.

Three pieces, fed by `Hub._check_link` once per `monitor_interval`:

- `LinkMeter` turns the cumulative per-slot receiver reports into the subscriber's OWN loss: each slot's reported
  loss is taken net of the packets the hub never received from that slot's publisher (gaps in the sequence
  numbers it forwarded, `RtpForwarder.upstream_missing`), and only per-slot deltas are summed, so a slot that
  appears, restarts or changes publisher never adds a jump. It also says whether any report is new.
- `LossWindow` keeps the (lost, received) totals over the last `loss_window` seconds; it is emptied when reports
  stop (`report_timeout`: an outage, a frozen peer) and whenever the level changes, so a decision is only ever
  taken on data gathered since the last change and since the reports resumed.
- `LinkState` moves a subscriber along a ladder of levels (0 = audio only ... `top` = everything) one step at a
  time (the steps, from the top: full video; temporal layer 0 only from publishers that send temporal layers;
  key frames only; audio only: `ladder`; a step a configuration turns off is not on the ladder): down when the window's loss exceeds `loss_threshold`, up after `recover_wait` seconds at or below
  `recover_threshold` (hysteresis: the two thresholds differ), and only at a check that brought a new report. A step up that is followed by a step down within
  `probe_window` doubles the wait before the next attempt (up to `recover_backoff_max`); a level held for
  `probe_window` seconds resets the wait.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from media.config import MediaConfig

# the ladder's steps, bottom up: audio only; key frames only (the publishers at their key frame rate); temporal
# layer 0 only (publishers that send temporal layers, at a quarter of their frame rate with L1T3); everything
AUDIO_ONLY = 0  # the bottom level, always
STEP_AUDIO_ONLY, STEP_KEYFRAMES, STEP_BASE_LAYER, STEP_FULL = "audio_only", "keyframes_only", "base_layer", "full"


def ladder(keyframes: bool, temporal: bool) -> tuple[str, ...]:
    """The steps a subscriber moves along, bottom (level 0) to top; audio only is always the last step down."""
    steps = [STEP_AUDIO_ONLY]
    if keyframes:
        steps.append(STEP_KEYFRAMES)
    if temporal:
        steps.append(STEP_BASE_LAYER)
    steps.append(STEP_FULL)
    return tuple(steps)


@dataclass(frozen=True)
class SlotReport:
    """The latest receiver report about one of the hub's senders, as read at a check."""

    lost: int  # cumulative packets lost, as reported by the subscriber
    received: int  # cumulative packets received (aiortc: packets sent - lost)
    upstream_missing: int  # cumulative: packets the hub never had to send (publisher's uplink loss)
    stamp: object  # changes when a new report arrives (the stats entry's timestamp)


def net_counts(report: SlotReport) -> tuple[int, int]:
    """(lost, received) of the subscriber's own link: reported loss net of what never reached the hub."""
    upstream = max(min(report.upstream_missing, report.lost), 0)
    return max(report.lost - upstream, 0), max(report.received + upstream, 0)


class LinkMeter:
    """Sums per-slot deltas of net loss into running totals (`lost`, `received`)."""

    def __init__(self) -> None:
        self._last: dict[Hashable, tuple[int, int, object]] = {}
        self.lost = 0
        self.received = 0

    def reset(self) -> None:
        self._last.clear()

    def update(self, reports: Mapping[Hashable, SlotReport]) -> bool:
        """Take the latest reports; True if at least one of them is new since the previous update."""
        fresh = False
        last = self._last
        for key, report in reports.items():
            lost, received = net_counts(report)
            before = last.get(key)
            last[key] = (lost, received, report.stamp)
            if before is None:
                fresh = fresh or report.stamp is not None  # a new slot: its first report is only a baseline
                continue
            if report.stamp == before[2]:
                continue
            fresh = True
            d_lost, d_received = lost - before[0], received - before[1]
            if d_lost < 0 or d_received < 0:
                continue  # the counters went back (a restarted sender): a new baseline
            self.lost += d_lost
            self.received += d_received
        for key in set(last) - set(reports):
            del last[key]
        return fresh


class LossWindow:
    def __init__(self, config: MediaConfig) -> None:
        self._config = config
        self._samples: deque[tuple[float, int, int]] = deque()
        self._last_fresh: float | None = None
        self.fresh = False  # the last sample came with a new report
        self.last_loss: float | None = None

    def reset(self) -> None:
        self._samples.clear()

    def add(self, now: float, lost: int, received: int, fresh: bool = True) -> None:
        """Running totals at `now`; `fresh`: a new report arrived since the previous sample."""
        self.fresh = fresh
        if fresh:
            self._last_fresh = now
        elif self._last_fresh is None or now - self._last_fresh > self._config.report_timeout:
            self.reset()  # the reports stopped: what was measured before no longer describes the link
            return
        if self._samples and (lost < self._samples[-1][1] or received < self._samples[-1][2]):
            self.reset()
        self._samples.append((now, lost, received))
        horizon = now - self._config.loss_window
        # keep one sample at or before the horizon as the window's base
        while len(self._samples) > 2 and self._samples[1][0] <= horizon:
            self._samples.popleft()

    def loss(self) -> float | None:
        """Fraction of packets lost over the window, or None without enough data."""
        if len(self._samples) < 2:
            return None
        t0, lost0, recv0 = self._samples[0]
        t1, lost1, recv1 = self._samples[-1]
        if t1 - t0 < self._config.loss_window * 0.8:
            return None
        lost, received = lost1 - lost0, recv1 - recv0
        if lost + received < self._config.loss_min_packets:
            return None
        return lost / (lost + received)


class LinkState:
    """One subscriber's place on the ladder of levels, 0 (audio only) to `top` (everything)."""

    def __init__(self, config: MediaConfig, top: int) -> None:
        self._config = config
        self.top = top
        self.level = top
        self.window = LossWindow(config)
        self.recover_wait = config.recover_after
        self._good_since: float | None = None
        self._last_up: float | None = None  # when the level last went up (a probe), until it has held

    @property
    def last_loss(self) -> float | None:
        return self.window.last_loss

    def reset(self, level: int | None = None) -> None:
        """Forget the measurements (a new peer connection); optionally put the subscriber at `level`."""
        self.window.reset()
        self._good_since = None
        if level is not None:
            self.level = level

    def decide(self, now: float) -> int | None:
        """The new level if it changes now, else None (call after `window.add`)."""
        config = self._config
        if self._last_up is not None and now - self._last_up >= config.probe_window:
            self.recover_wait = config.recover_after  # the probe held: the next one is not penalised
            self._last_up = None
        loss = self.window.last_loss = self.window.loss()
        if loss is None:
            self._good_since = None
            return None
        if loss > config.loss_threshold:
            self._good_since = None
            if self.level == 0:
                return None
            if self._last_up is not None:  # the last probe failed: wait longer before the next one
                self.recover_wait = min(self.recover_wait * 2, config.recover_backoff_max)
                self._last_up = None
            return self._move(self.level - 1)
        if self.level < self.top and loss <= config.recover_threshold:
            if self._good_since is None:
                self._good_since = now
            # up only on a report that has just come: a link whose reports have paused (an outage beginning) has
            # shown nothing good lately, however good the window's older data was
            if now - self._good_since >= self.recover_wait and self.window.fresh:
                self._last_up = now
                return self._move(self.level + 1)
        else:
            self._good_since = None
        return None

    def move(self, level: int) -> int:
        """Put the subscriber at `level` (0..top) as a decision would: the window starts again from there."""
        return self._move(min(max(level, 0), self.top))

    def _move(self, level: int) -> int:
        self.level = level
        self.window.reset()
        self._good_since = None
        return level
