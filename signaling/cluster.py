"""Nodes on Redis: heartbeats with load, session leases with fencing tokens, drain (docs/architecture.md, "Nodes").

The rules (where a session goes, what a stale lease means) are mediation/placement.py's; this module is the Redis
side (`RedisLeases`, the `LeaseStore` port) and the node's own loop (`ClusterNode`): every third of the lease time
it heartbeats (its address, CPU, sessions, drain flag; stale after 5 s), renews the leases of the sessions it owns,
and releases the leases of sessions that are no longer live here. A renewal refused (another node holds the lease
now: this node was presumed dead) calls `on_lost`, which ends the local copy of the session at once.

Keys (`prefix` is "onedoor:" unless a test isolates itself):
  node:<id>    JSON heartbeat, expires after 3x the stale time     nodes      set of node ids
  drain:<id>   "1" while the node is drained (kept across restarts)
  lease:<sid>  "<node>|<token>", SET NX PX                        token:<sid> INCR: the fencing token
When Redis cannot be reached, sessions already running go on (their leases are renewed or retaken when it is back)
and what needs Redis (a join, a connect) fails with `Unavailable` (HTTP 503, `unavailable`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from mediation.errors import OneDoorError, Unavailable
from mediation.live import LiveSessions
from mediation.placement import STALE_MS, Lease, NodeLoad, NoNode, Placed, place

log = logging.getLogger(__name__)

_RENEW = """if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0"""
_RELEASE = """if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0"""


class WrongNode(OneDoorError):
    """The session is owned by another node: connect there (detail: node, url)."""

    code = "wrong_node"
    status = 409


class StaleOwner(OneDoorError):
    """This node's lease (token) is no longer the session's current one: its writes are refused."""

    code = "stale_owner"
    status = 409


def _value(lease: Lease) -> str:
    return f"{lease.node_id}|{lease.token}"


class RedisLeases:
    """`mediation.placement.LeaseStore` on Redis."""

    def __init__(self, redis: aioredis.Redis, prefix: str = "onedoor:") -> None:
        self.r, self.p = redis, prefix
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def now_ms(self) -> int:
        sec, usec = await self.r.time()
        return int(sec) * 1000 + int(usec) // 1000

    async def epoch_age_ms(self) -> int:
        """The store's epoch is set once (NX, no expiry): a Redis that restarted empty starts a new one."""
        now = await self.now_ms()
        await self.r.set(f"{self.p}epoch", now, nx=True)
        began = await self.r.get(f"{self.p}epoch")
        return now - int(began) if began is not None else 0

    async def heartbeat(self, node: NodeLoad) -> None:
        body = {"url": node.url, "cpu": node.cpu, "sessions": node.sessions, "draining": node.draining,
                "seen_ms": node.seen_ms, "running": list(node.running)}
        async with self.r.pipeline(transaction=True) as pipe:
            pipe.set(f"{self.p}node:{node.node_id}", json.dumps(body), px=STALE_MS * 3)
            pipe.sadd(f"{self.p}nodes", node.node_id)
            pipe.set(f"{self.p}epoch", node.seen_ms, nx=True)  # a Redis that restarted empty: a new epoch
            await pipe.execute()

    async def forget_node(self, node_id: str) -> None:
        await self.r.delete(f"{self.p}node:{node_id}")
        await self.r.srem(f"{self.p}nodes", node_id)

    async def nodes(self) -> list[NodeLoad]:
        ids = sorted(x.decode() if isinstance(x, bytes) else str(x) for x in await self.r.smembers(f"{self.p}nodes"))
        if not ids:
            return []
        raw = await self.r.mget([f"{self.p}node:{i}" for i in ids])
        out, gone = [], []
        for node_id, body in zip(ids, raw, strict=True):
            if body is None:
                gone.append(node_id)
                continue
            d = json.loads(body)
            out.append(NodeLoad(node_id, d["url"], float(d["cpu"]), int(d["sessions"]), bool(d["draining"]),
                                int(d["seen_ms"]), tuple(int(x) for x in d.get("running", ()))))
        if gone:
            await self.r.srem(f"{self.p}nodes", *gone)
        return out

    async def draining(self, node_id: str) -> bool:
        return bool(await self.r.exists(f"{self.p}drain:{node_id}"))

    async def set_draining(self, node_id: str, on: bool) -> None:
        if on:
            await self.r.set(f"{self.p}drain:{node_id}", "1")
        else:
            await self.r.delete(f"{self.p}drain:{node_id}")

    async def owner(self, session_id: int) -> Lease | None:
        raw = await self.r.get(f"{self.p}lease:{session_id}")
        if raw is None:
            return None
        node, _, token = (raw.decode() if isinstance(raw, bytes) else str(raw)).rpartition("|")
        return Lease(session_id, node, int(token))

    async def acquire(self, session_id: int, node_id: str, ttl_ms: int) -> Lease | None:
        token = int(await self.r.incr(f"{self.p}token:{session_id}"))  # only grows, even if the SET loses
        lease = Lease(session_id, node_id, token)
        if await self.r.set(f"{self.p}lease:{session_id}", _value(lease), nx=True, px=ttl_ms):
            return lease
        return None

    async def renew(self, lease: Lease, ttl_ms: int) -> bool:
        return bool(await self._renew(keys=[f"{self.p}lease:{lease.session_id}"], args=[_value(lease), ttl_ms]))

    async def release(self, lease: Lease) -> None:
        await self._release(keys=[f"{self.p}lease:{lease.session_id}"], args=[_value(lease)])

    async def current(self, lease: Lease) -> bool:
        """The fencing check: is `lease` (node and token) still the session's lease?"""
        return await self.owner(lease.session_id) == lease


class ClusterNode:
    """This process as one node: heartbeat, the leases it holds, placement for joins and connects."""

    def __init__(self, redis_url: str, node_id: str, url: str, live: LiveSessions, *, ttl_ms: int = 5000,
                 prefix: str = "onedoor:", cpu: Callable[[], float] = lambda: 0.0) -> None:
        self.node_id, self.url, self.live, self.ttl_ms, self.cpu = node_id, url.rstrip("/"), live, ttl_ms, cpu
        self.redis = aioredis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.store = RedisLeases(self.redis, prefix)
        self.held: dict[int, tuple[Lease, float]] = {}  # session -> (lease, when this node got it, monotonic)
        self.renewed: dict[int, float] = {}  # session -> when its lease was last confirmed (monotonic)
        self.draining = False
        self.on_lost: Callable[[int], Coroutine[Any, Any, None]] | None = None
        self.redis_ok = False
        self._task: asyncio.Task[None] | None = None
        self._lost: set[asyncio.Task[None]] = set()

    # ---- figures -----------------------------------------------------------------------------------------
    def load(self, seen_ms: int = 0) -> NodeLoad:
        return NodeLoad(self.node_id, self.url, round(self.cpu(), 4), len(self.held), self.draining, seen_ms,
                        tuple(sorted(self.held)))

    def figures(self) -> dict[str, Any]:
        n = self.load()
        return {"node": n.node_id, "url": n.url, "score": n.score, "draining": n.draining, "sessions": n.sessions,
                "redis": self.redis_ok}

    # ---- lifecycle ---------------------------------------------------------------------------------------
    async def start(self) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self.tick()
        self._task = asyncio.get_running_loop().create_task(self._loop(), name=f"cluster-{self.node_id}")

    async def stop(self) -> None:
        """A clean shutdown: release every lease (the sessions are placed again at once) and leave the set."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError, OSError):
            for lease, _ in list(self.held.values()):
                await self.store.release(lease)
            await self.store.forget_node(self.node_id)
        self.held.clear()
        await self.redis.aclose()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.ttl_ms / 3000)
            try:
                await self.tick()
            except (RedisError, OSError) as e:
                if self.redis_ok:
                    log.warning("node %s: Redis unreachable (%s); sessions go on", self.node_id, e)
                self.redis_ok = False

    async def tick(self) -> None:
        self.draining = await self.store.draining(self.node_id)
        await self.store.heartbeat(self.load(await self.store.now_ms()))
        if not self.redis_ok:
            log.info("node %s: Redis reachable", self.node_id)
        self.redis_ok = True
        now = time.monotonic()
        for sid, (lease, since) in list(self.held.items()):
            if self.live.get(sid) is None and now - since > self.ttl_ms / 1000:
                await self.store.release(lease)  # the session ended here (or its people never came)
                self.held.pop(sid, None)
            elif await self.store.renew(lease, self.ttl_ms):
                self.renewed[sid] = now
            else:
                await self._retake(sid, since)
        for sid in set(self.renewed) - set(self.held):
            del self.renewed[sid]

    async def _retake(self, sid: int, since: float) -> None:
        """The lease is gone: it expired while Redis was away (or Redis restarted empty) and then nobody else may
        have it yet (take it again, new token), or another node owns the session now (lose it here)."""
        owner = await self.store.owner(sid)
        if owner is not None and owner.node_id == self.node_id:  # placed here again by a join (it runs here)
            self.held[sid] = (owner, since)
            return
        got = await self.store.acquire(sid, self.node_id, self.ttl_ms) if owner is None else None
        if got is not None:
            self.held[sid] = (got, since)
            log.warning("node %s: lease of session %s taken again (token %s)", self.node_id, sid, got.token)
            return
        if self.held.pop(sid, None) is None:  # a tick beside this one (the heartbeat's) has told the loss already
            return
        log.warning("node %s: session %s is now owned by %s", self.node_id, sid, owner)
        if self.on_lost is not None:
            t = asyncio.get_running_loop().create_task(self.on_lost(sid), name=f"cluster-lost-{sid}")
            self._lost.add(t)
            t.add_done_callback(self._lost.discard)

    # ---- placement ---------------------------------------------------------------------------------------
    async def where(self, session_id: int) -> Placed:
        """The session's owner, placing it (by load) if nobody owns it; 503 without Redis or a node to take it."""
        try:
            placed = await place(self.store, session_id, self.ttl_ms)
        except NoNode:
            raise Unavailable("no node can take the session now", code="unavailable") from None
        except (RedisError, OSError):
            raise Unavailable("the cluster store is unavailable; try again shortly", code="unavailable") from None
        if placed.is_on(self.node_id) and session_id not in self.held:
            self.held[session_id] = (placed.lease, time.monotonic())
            self.renewed[session_id] = time.monotonic()
        return placed

    def address(self, placed: Placed) -> dict[str, str]:
        url = placed.node.url if placed.node is not None else self.url
        return {"id": placed.lease.node_id, "url": url}

    async def claim(self, session_id: int) -> Lease:
        """A connection for the session arrived here: this node owns it (now), or WrongNode names the owner."""
        held = self.held.get(session_id)
        if held is not None:
            return held[0]
        placed = await self.where(session_id)
        if not placed.is_on(self.node_id):
            raise WrongNode("the session is served by another node", code="wrong_node", **self.address(placed))
        return placed.lease

    async def fence(self, session_id: int) -> Lease:
        """Before a write that matters (a recording part, session state): this node's lease must be current."""
        held = self.held.get(session_id)
        try:
            ok = held is not None and await self.store.current(held[0])
            if not ok and held is not None:  # expired while Redis was away: take it again now if nobody has it,
                await self._retake(session_id, held[1])  # rather than wait for the next renewal
                held = self.held.get(session_id)
                ok = held is not None and await self.store.current(held[0])
        except (RedisError, OSError):  # no store to ask: only while the last renewal cannot have expired yet
            ok = held is not None and time.monotonic() - self.renewed.get(session_id, 0.0) < self.ttl_ms / 1000
        if not ok or held is None:
            raise StaleOwner("this node no longer owns the session", code="stale_owner", session=session_id)
        return held[0]


class LeaseProbe:
    """At a node's start, before it finalizes interrupted recordings: does another node own the session now?

    After a takeover the new owner continues the recording as its next part; a node restarting meanwhile must not
    mark it truncated. A lease held under this node's own id belongs to its previous (dead) process: not elsewhere.
    Unknown (Redis unreachable) counts as elsewhere: finalizing a recording someone is continuing cannot be undone,
    leaving one interrupted can (the next start, or `onedoor recordings recover`)."""

    def __init__(self, redis_url: str, node_id: str, prefix: str = "onedoor:") -> None:
        self.node_id = node_id
        self.redis = aioredis.from_url(redis_url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.store = RedisLeases(self.redis, prefix)

    async def elsewhere(self, session_id: str) -> bool:
        try:
            lease = await self.store.owner(int(session_id))
        except ValueError:  # not a live-session id: no node can own it
            return False
        except (RedisError, OSError) as e:
            log.warning("node %s: Redis unreachable at start (%s); session %s's recording is left interrupted",
                        self.node_id, e, session_id)
            return True
        return lease is not None and lease.node_id != self.node_id

    async def aclose(self) -> None:
        await self.redis.aclose()


def drain_command(a: Any) -> int:
    """`onedoor node drain --redis-url URL --node-id ID [--undo]`: the node takes no new sessions (its running
    sessions stay until they end); `--undo` lets it take sessions again."""

    async def go() -> int:
        r = aioredis.from_url(a.redis_url, socket_timeout=2.0)
        try:
            store = RedisLeases(r)
            await store.set_draining(a.node_id, not a.undo)
            owned = [n.sessions for n in await store.nodes() if n.node_id == a.node_id]
        finally:
            await r.aclose()
        state = "takes sessions again" if a.undo else "drained: no new sessions"
        print(f"node {a.node_id} {state}; it owns {owned[0] if owned else 0} session(s) now", flush=True)
        return 0
    return asyncio.run(go())
