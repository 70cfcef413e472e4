"""Pacing one weak subscriber's video (issue 15), so that a key frame does not bury its audio.

A VP8 key frame is 15-40 packets sent by the publisher in one burst. On a clean link that is nothing; on a
300 kbit/s rural link with a bounded queue the burst sits in the bottleneck's queue for most of a second (or
overflows it), and every audio packet behind it arrives that late or not at all: the weak party hears the others
with half-second gaps exactly when the ladder has cut their video down to key frames.

One `Pacer` per subscriber, shared by its video slots (audio is never paced and never waits): while `rate` is set
(the hub sets it below the ladder's top step: media/bandwidth.py PaceControl, from the queue its round-trip
times show) each video packet leaves
no earlier than the link can have carried the previous ones at that rate, so the bottleneck queue stays short and
audio passes it within a packet or two. Retransmissions go at once but count against the budget, and only while
the line is free within `RESEND_HORIZON`: otherwise they are dropped (a receiver on a lossy link asks for every
lost packet; sent regardless, its requests pushed the line seconds ahead of the clock, with nothing queued, and
then every new packet was refused: a weak party saw no video at all). `backlog()` says
how long what is queued takes to leave; the forwarder starts a new key frame (at key frames only) only when what
is queued leaves within `rtpforward.KEYFRAME_ROOM`, which also bounds the key frame rate to what the rate carries. Nothing is held longer
than `max_delay`: a packet that would wait more is refused (the forwarder then skips to the next key frame, as
for a full socket). `rate = None` (the top step) sends what is queued at once and passes packets straight on.
"""

from __future__ import annotations

import asyncio
from collections import deque

from media.rtpforward import Out

BURST = 0.02  # s: packets within this much of the line being free go at once (timer granularity)
RESEND_HORIZON = 0.25  # s: a retransmission goes only if the line is free within this; else it is dropped


class Pacer:
    def __init__(self, max_delay: float = 3.0) -> None:
        self.max_delay = max_delay
        self.rate: float | None = None  # bit/s; None: not pacing
        # (loop time it may leave, sender, packet, payload size, RTP timestamp, NTP time), in sending order
        self._queue: deque[tuple[float, Out, bytes, int, int, int]] = deque()
        self._free_at = 0.0  # loop time at which the link has carried everything sent or queued so far
        self._timer: asyncio.TimerHandle | None = None
        self.paced = 0  # packets that waited
        self.refused = 0  # packets refused (would have waited longer than max_delay)
        self.resends_dropped = 0  # retransmissions dropped (the line was busy beyond RESEND_HORIZON)

    def wrap(self, out: Out) -> PacedOut:
        return PacedOut(self, out)

    def set_rate(self, rate: float | None) -> None:
        self.rate = rate
        if rate is None:  # the top step: what waits goes now, and nothing waits from here on
            self._cancel()
            while self._queue:
                _, out, data, size, ts, ntp = self._queue.popleft()
                out.send(data, size, ts, ntp)

    def backlog(self) -> float:
        """Seconds until what is already queued has left (0: nothing waits)."""
        if not self._queue:
            return 0.0
        return max(self._free_at - asyncio.get_running_loop().time(), 0.0)

    def close(self) -> None:
        self._cancel()
        self._queue.clear()

    def send(self, out: Out, data: bytes, payload_size: int, rtp_timestamp: int, ntp: int) -> bool:
        rate = self.rate
        if rate is None:
            return out.send(data, payload_size, rtp_timestamp, ntp)
        now = asyncio.get_running_loop().time()
        at = max(self._free_at, now)
        if at - now > self.max_delay:
            self.refused += 1
            return False
        self._free_at = at + len(data) * 8 / rate
        if not self._queue and at <= now + BURST:
            return out.send(data, payload_size, rtp_timestamp, ntp)
        self._queue.append((at, out, data, payload_size, rtp_timestamp, ntp))
        self.paced += 1
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_at(self._queue[0][0], self._drain)
        return True

    def resend(self, out: Out, data: bytes) -> bool:
        if self.rate is not None:  # at once, but it takes its share of the link, and only when there is room
            now = asyncio.get_running_loop().time()
            at = max(self._free_at, now)
            if at - now > RESEND_HORIZON:
                self.resends_dropped += 1
                return False
            self._free_at = at + len(data) * 8 / self.rate
        return out.resend(data)

    def _drain(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        while self._queue and self._queue[0][0] <= now + BURST:
            _, out, data, size, ts, ntp = self._queue.popleft()
            out.send(data, size, ts, ntp)  # a refusal here (socket full) is a loss the NACKs recover
        if self._queue:
            self._timer = loop.call_at(self._queue[0][0], self._drain)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class PacedOut:
    """One video slot's sender behind its subscriber's pacer (the forwarder's `Out`)."""

    def __init__(self, pacer: Pacer, out: Out) -> None:
        self._pacer, self._out = pacer, out

    def send(self, data: bytes, payload_size: int, rtp_timestamp: int, ntp: int) -> bool:
        return self._pacer.send(self._out, data, payload_size, rtp_timestamp, ntp)

    def resend(self, data: bytes) -> bool:
        return self._pacer.resend(self._out, data)

    def backlog(self) -> float:
        return self._pacer.backlog()
