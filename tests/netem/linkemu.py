"""A userspace link emulator (this kernel has no sch_netem and no iptables): run as its own process.

    python -m tests.netem.linkemu --ns od-weak-1 --net 10.77.1

creates the network namespace `--ns` and two TUN devices: `<ns>-r` in the caller's namespace (address
<net>.1/30) and `<ns>-w`, moved into the namespace (address <net>.2/30, the only way out of it, default route).
Every IP packet crossing between them passes through this process, which applies, per direction ("up": from
the namespace, "down": towards it):

- `loss`: Bernoulli loss (seeded: the same run loses the same packets);
- `rate` (bit/s) with a bounded FIFO of `queue` bytes (tail drop): a packet waits for those ahead of it;
- `delay`: a fixed one-way delay in seconds, after the queue;
- `allow`: if set, only UDP/TCP packets with one of these ports (either end) pass, as a firewall would;
- `drop_protocols`: IP protocol numbers dropped (6: TCP, 17: UDP), e.g. a signaling outage with media flowing;
- `blocked`: everything is dropped (an outage).

Control on stdin, one JSON object per line: {"up": {...}, "down": {...}} changes settings, {"stats": true}
prints the counters as one JSON line on stdout. "ready" is printed once the devices are up; EOF on stdin (the
test ends, or dies) removes the namespace and exits. Nothing leaves the machine: the /30 is private.
"""

from __future__ import annotations

import argparse
import fcntl
import heapq
import json
import os
import random
import selectors
import struct
import subprocess
import sys
import time
from collections import deque
from dataclasses import asdict, dataclass, field

TUNSETIFF = 0x400454CA
IFF_TUN, IFF_NO_PI = 0x0001, 0x1000


@dataclass
class Direction:
    loss: float = 0.0
    rate: float | None = None  # bit/s; None: unlimited
    queue: int = 64_000  # bytes waiting for the link before tail drop
    delay: float = 0.0  # seconds, one way
    allow: list[int] | None = None  # ports that pass (either end); None: all
    drop_protocols: list[int] | None = None  # IP protocol numbers dropped (6 TCP, 17 UDP)
    blocked: bool = False
    # counters
    packets_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    lost: int = 0
    queue_drops: int = 0
    filtered: int = 0
    max_queue: int = 0
    _busy_until: float = 0.0
    _backlog: deque[tuple[float, int]] = field(default_factory=deque)  # (end of transmission, size)
    _queued: int = 0

    def settings(self, update: dict[str, object]) -> None:
        for key in ("loss", "rate", "queue", "delay", "allow", "drop_protocols", "blocked"):
            if key in update:
                setattr(self, key, update[key])

    def counters(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}

    def admit(self, packet: bytes, now: float, rng: random.Random) -> float | None:
        """When the packet leaves the link, or None if it is dropped."""
        self.packets_in += 1
        if self.blocked:
            self.lost += 1
            return None
        if self.drop_protocols and len(packet) >= 20 and packet[9] in self.drop_protocols:
            self.filtered += 1
            return None
        if self.allow is not None and not _port_allowed(packet, self.allow):
            self.filtered += 1
            return None
        if self.loss and rng.random() < self.loss:
            self.lost += 1
            return None
        size = len(packet)
        if self.rate is None:
            depart = now
        else:
            while self._backlog and self._backlog[0][0] <= now:
                self._queued -= self._backlog.popleft()[1]
            if self._queued + size > self.queue:
                self.queue_drops += 1
                return None
            start = max(now, self._busy_until)
            self._busy_until = depart = start + size * 8 / self.rate
            self._backlog.append((depart, size))
            self._queued += size
            self.max_queue = max(self.max_queue, self._queued)
        self.packets_out += 1
        self.bytes_out += size
        return depart + self.delay


def _port_allowed(packet: bytes, allow: list[int]) -> bool:
    if len(packet) < 20 or packet[0] >> 4 != 4:
        return False
    proto, ihl = packet[9], (packet[0] & 0x0F) * 4
    if proto not in (6, 17) or len(packet) < ihl + 4:
        return False
    sport, dport = struct.unpack_from("!HH", packet, ihl)
    return sport in allow or dport in allow


def _tun(name: str) -> int:
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def run(ns: str, net: str, seed: int) -> None:
    outer, inner = f"{ns[:11]}-r", f"{ns[:11]}-w"
    _ip("netns", "add", ns)
    try:
        fd_outer, fd_inner = _tun(outer), _tun(inner)
        _ip("link", "set", inner, "netns", ns)
        _ip("addr", "add", f"{net}.1/30", "dev", outer)
        _ip("link", "set", outer, "up")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "addr", "add", f"{net}.2/30", "dev", inner)
        _ip("-n", ns, "link", "set", inner, "up")
        _ip("-n", ns, "route", "add", "default", "via", f"{net}.1")
        _loop(fd_outer, fd_inner, random.Random(seed))
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _loop(fd_outer: int, fd_inner: int, rng: random.Random) -> None:
    up, down = Direction(), Direction()
    links = {fd_inner: (up, fd_outer), fd_outer: (down, fd_inner)}
    selector = selectors.DefaultSelector()
    for fd in links:
        selector.register(fd, selectors.EVENT_READ)
    stdin = sys.stdin.fileno()
    os.set_blocking(stdin, False)
    selector.register(stdin, selectors.EVENT_READ)
    pending: list[tuple[float, int, int, bytes]] = []  # (due, order, out fd, packet)
    order = 0
    commands = b""
    print("ready", flush=True)
    while True:
        timeout = max(pending[0][0] - time.monotonic(), 0) if pending else None
        for key, _ in selector.select(timeout):
            fd = key.fd
            if fd == stdin:
                chunk = os.read(stdin, 65536)
                if not chunk:
                    return
                commands += chunk
                while b"\n" in commands:
                    line, commands = commands.split(b"\n", 1)
                    if line.strip():
                        _command(json.loads(line), up, down)
                continue
            direction, out = links[fd]
            for _ in range(64):
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                due = direction.admit(packet, time.monotonic(), rng)
                if due is not None:
                    order += 1
                    heapq.heappush(pending, (due, order, out, packet))
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, out, packet = heapq.heappop(pending)
            try:
                os.write(out, packet)
            except OSError:
                pass  # the device is going away, or the kernel refused one packet: it is lost


def _command(message: dict[str, object], up: Direction, down: Direction) -> None:
    for name, direction in (("up", up), ("down", down)):
        update = message.get(name)
        if isinstance(update, dict):
            direction.settings(update)
    if message.get("stats"):
        print(json.dumps({"up": up.counters(), "down": down.counters()}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ns", required=True)
    parser.add_argument("--net", required=True, help="first three octets of the private /30, e.g. 10.77.1")
    parser.add_argument("--seed", type=int, default=15)
    args = parser.parse_args()
    run(args.ns, args.net, args.seed)


if __name__ == "__main__":
    main()
