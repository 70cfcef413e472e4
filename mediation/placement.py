"""Which node owns a live session (issue 14; docs/architecture.md, "Nodes").

Each `onedoor serve` is a node. A live session (its `LiveSession` and media hub) is owned by exactly one node at a
time through a lease: a key with an expiry naming the owner, and a fencing token that only grows (a new owner gets
a higher one). The owner renews the lease while the session is live and releases it at the end; a node that dies
stops renewing, the lease expires, and the next join places the session again. A write that matters carries the
token, and the lease store refuses it from an owner whose token is no longer the current one.

This module holds the rules only (the lease store is a port, `LeaseStore`; signaling/cluster.py implements it on
Redis): which node to place a session on (least loaded among fresh, undrained nodes), and what a node does when a
person asks it for a session (own it, or send them to the owner).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

STALE_MS = 5000  # a node whose last heartbeat is older than this takes no new sessions and owns nothing new
SESSION_COST = 0.05  # a live session's share of a core in the load score (a 3-party session costs 3.5-5.5%)


@dataclass(frozen=True)
class NodeLoad:
    """A node's heartbeat: its address for clients and the figures placement reads (also on /metrics)."""

    node_id: str
    url: str
    cpu: float  # cores this process used over the last second
    sessions: int  # live sessions it owns
    draining: bool = False
    seen_ms: int = 0  # when it reported (the store's clock, milliseconds)
    running: tuple[int, ...] = ()  # the sessions it runs (their people and media are there)

    @property
    def score(self) -> float:
        """Lower is less loaded: the CPU it uses plus what its sessions are expected to cost."""
        return self.cpu + self.sessions * SESSION_COST

    def fresh(self, now_ms: int, stale_ms: int = STALE_MS) -> bool:
        return now_ms - self.seen_ms <= stale_ms


@dataclass(frozen=True)
class Lease:
    session_id: int
    node_id: str
    token: int  # the fencing token: strictly greater for every new owner of the session


def choose(nodes: list[NodeLoad], now_ms: int, stale_ms: int = STALE_MS) -> NodeLoad | None:
    """The node a new session goes to: the least loaded that is fresh and not draining (ties: by id)."""
    ready = [n for n in nodes if n.fresh(now_ms, stale_ms) and not n.draining]
    return min(ready, key=lambda n: (n.score, n.node_id), default=None)


class LeaseStore(Protocol):
    """What placement needs from the shared store (signaling.cluster.RedisLeases implements it)."""

    async def now_ms(self) -> int: ...
    async def epoch_age_ms(self) -> int:
        """How long the store has held its state (0 just after it started empty: a Redis restart)."""
    async def nodes(self) -> list[NodeLoad]: ...
    async def owner(self, session_id: int) -> Lease | None: ...
    async def acquire(self, session_id: int, node_id: str, ttl_ms: int) -> Lease | None:
        """Take the lease if nobody holds it (atomically), with a new fencing token; None if held."""
    async def renew(self, lease: Lease, ttl_ms: int) -> bool:
        """Extend the lease if it is still exactly this one (same node and token)."""
    async def release(self, lease: Lease) -> None:
        """Delete the lease if it is still exactly this one."""


@dataclass(frozen=True)
class Placed:
    """Where a session lives: `lease.node_id` owns it; `node` is its heartbeat (its address for clients)."""

    lease: Lease
    node: NodeLoad | None

    def is_on(self, node_id: str) -> bool:
        return self.lease.node_id == node_id


class NoNode(LookupError):
    """No fresh node may take the session (all draining or stale)."""


async def place(store: LeaseStore, session_id: int, ttl_ms: int, stale_ms: int = STALE_MS) -> Placed:
    """The session's owner: the current lease if its node is alive, else a new lease for the node that runs it
    (after the store lost its leases: a Redis restart) or the least loaded node.

    A lease whose node stopped heartbeating is not waited for (its expiry is at most `ttl_ms` away and would only
    delay the people): its owner is taken to be dead and a new lease is written over it, with a higher token, so
    that anything the old owner still tries to write is refused. Just after the store started empty, a session
    nobody claims yet waits until every live node has heartbeated (two renewal periods), so that a join does not
    place a running session on another node before its owner says it runs it."""
    settle = 2 * ttl_ms // 3
    for _ in range(3):  # another node may be placing the same session at the same moment: one of them wins
        nodes = {n.node_id: n for n in await store.nodes()}
        now = await store.now_ms()
        lease = await store.owner(session_id)
        if lease is not None:
            node = nodes.get(lease.node_id)
            if node is not None and node.fresh(now, stale_ms):
                return Placed(lease, node)
            await store.release(lease)  # a dead owner's lease; release() only deletes exactly this lease
        runs = [n for n in nodes.values() if session_id in n.running and n.fresh(now, stale_ms)]
        age = await store.epoch_age_ms()
        if not runs and age < settle:
            await asyncio.sleep((settle - age) / 1000)
            continue
        target = runs[0] if runs else choose(list(nodes.values()), now, stale_ms)
        if target is None:
            raise NoNode(session_id)
        got = await store.acquire(session_id, target.node_id, ttl_ms)
        if got is not None:
            return Placed(got, target)
    raise NoNode(session_id)
