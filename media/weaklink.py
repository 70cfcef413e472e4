"""Weak-link detection (P5) from the receiver reports a subscriber sends about the hub's senders.

Pure logic: `LossWindow` is fed cumulative (packets lost, packets received) as reported in RTCP RRs and decides
when a subscriber should go audio only (sustained loss) and when it may have video again (sustained recovery).
"""

from __future__ import annotations

from collections import deque

from media.config import MediaConfig

DEGRADE = "degrade"
RECOVER = "recover"


class LossWindow:
    def __init__(self, config: MediaConfig) -> None:
        self._config = config
        self._samples: deque[tuple[float, int, int]] = deque()
        self._good_since: float | None = None
        self.last_loss: float | None = None

    def reset(self) -> None:
        self._samples.clear()
        self._good_since = None

    def add(self, now: float, lost: int, received: int) -> None:
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
        lost, received = max(lost1 - lost0, 0), max(recv1 - recv0, 0)
        if lost + received < self._config.loss_min_packets:
            return None
        return lost / (lost + received)

    def decide(self, now: float, degraded: bool) -> str | None:
        loss = self.last_loss = self.loss()
        if loss is None:
            return None
        if not degraded:
            if loss > self._config.loss_threshold:
                self.reset()
                return DEGRADE
            return None
        if loss <= self._config.recover_threshold:
            if self._good_since is None:
                self._good_since = now
            if now - self._good_since >= self._config.recover_after:
                self.reset()
                return RECOVER
        else:
            self._good_since = None
        return None
