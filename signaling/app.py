"""The aiohttp application factory: HTTP API, Socket.IO, static web app, security headers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import redis.asyncio as aioredis
from aiohttp import web

from mediation import accounts, tenancy
from mediation.db import unreachable
from signaling import (
    agreement_api,
    court_api,
    documents_api,
    events_agreement,
    events_casefile,
    events_lobby,
    events_media,
    events_session,
    exports,
    http_api,
    party_api,
    public_api,
    recording_events,
    recordings_api,
)
from signaling.cluster import ClusterNode
from signaling.config import Settings
from signaling.http_api import PUBLISHER
from signaling.httpkit import Api, errors_middleware, openapi
from signaling.limits import GuardedServer, install_log_filter
from signaling.metrics import METRICS, NodeMetrics, TimedStorage, metrics_app
from signaling.outage import install_outage_filter
from signaling.publish import NS, Publisher
from signaling.services import SERVICES, Services
from signaling.session_ns import NAMESPACE, SessionNamespace, connect_throttle
from signaling.shared_limits import RedisBucket, RedisThrottle
from signaling.sio_redis import RedisManager
from signaling.sockets import SIO, EventSpec, EventTable, merge
from signaling.takeover import let_go
from web import WEB_DIR

log = logging.getLogger(__name__)

# Every route table and event table the server answers, handed to the app factory (nothing registers on import).
ROUTES: list[Api] = [http_api.api, agreement_api.api, court_api.api, recordings_api.api, party_api.api,
                     public_api.api, documents_api.api, exports.api]
EVENTS: list[EventTable] = [events_lobby.events, events_session.events, events_media.events,
                            recording_events.events, events_agreement.events, events_casefile.events]


def api_routes() -> Api:
    return Api.merge(ROUTES)


def event_handlers() -> dict[str, EventSpec]:
    return merge(EVENTS)
SHARED_REDIS = web.AppKey("shared_redis", aioredis.Redis)
PAGES = {"/join": "party.html", "/console": "console.html", "/court": "court.html",
         "/verify/{code}": "verify.html", "/c/{code}": "case.html"}
CSP = ("default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; connect-src 'self' ws: wss:; "
       "style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")


@web.middleware
async def security_headers(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                           ) -> web.StreamResponse:
    resp = await handler(request)
    resp.headers.setdefault("Content-Security-Policy", CSP)
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("Referrer-Policy", "no-referrer")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Permissions-Policy", "camera=(self), microphone=(self), display-capture=(self)")
    if request.path.startswith("/api"):
        resp.headers.setdefault("Cache-Control", "no-store")
    return resp


def create_app(settings: Settings, services: Services | None = None, routes: list[Api] | None = None,
               events: list[EventTable] | None = None) -> web.Application:
    services = services or Services.build(settings)
    app = web.Application(middlewares=[security_headers, errors_middleware], client_max_size=1024 * 1024)
    app[SERVICES] = services
    mgr = RedisManager(settings.redis_url) if settings.redis_url else None
    # GuardedServer screens every packet (binary, reserved or non-string event names, depth; signaling/limits.py);
    # websockets only (no long-polling); what waits to be sent to one client is bounded (max_outgoing_bytes);
    # one Engine.IO message is at most 256 KiB (also aiohttp's websocket max_msg_size), nothing is buffered beyond it.
    sio = GuardedServer(async_mode="aiohttp", client_manager=mgr, max_http_buffer_size=256 * 1024,
                        ping_interval=10, ping_timeout=10, default_namespace=NS,
                        max_queue_bytes=settings.max_outgoing_bytes)
    install_log_filter()  # library tracebacks for malformed packets: one line per connection
    install_outage_filter("saq")  # the export queue's tracebacks while Redis is away: one line per 10 s
    metrics = app[METRICS] = NodeMetrics(services.live)
    if not isinstance(services.storage, TimedStorage):  # segments written and fsync latency for /metrics
        services.storage = TimedStorage(services.storage, metrics)
    publisher = Publisher(sio, services)
    if mgr is not None:  # what the other nodes' HTTP routes change in this node's live sessions
        mgr.on_live = publisher.from_node
    ns = SessionNamespace(services, publisher, merge(events or EVENTS))
    sio.register_namespace(ns)
    if settings.redis_url:  # a node of several: throttles and rate limits counted once for all nodes
        shared = app[SHARED_REDIS] = aioredis.from_url(settings.redis_url, socket_timeout=2,
                                                       socket_connect_timeout=2)
        services.login_throttle = RedisThrottle(redis=shared)
        ns.throttle = connect_throttle(RedisThrottle, redis=shared, prefix="onedoor:limit:connect:")
        public_api.share(app, RedisBucket(redis=shared))
    sio.attach(app)
    app[SIO], app[NAMESPACE], app[PUBLISHER] = sio, ns, publisher
    api = Api.merge(routes or ROUTES)
    api.install(app)
    spec = openapi(api)
    async def openapi_json(_r: web.Request) -> web.Response:
        return web.json_response(spec)

    app.router.add_get("/api/openapi.json", openapi_json)
    app.router.add_get("/healthz", _healthz)
    _static(app, settings.web_dir or WEB_DIR)
    if settings.node_url and services.cluster is None:
        if not settings.redis_url:
            raise ValueError("a node of several (node_url) needs redis_url")
        services.cluster = ClusterNode(settings.redis_url, settings.node_id or node_id_of(settings.node_url),
                                       settings.node_url, services.live, ttl_ms=settings.lease_ms,
                                       cpu=lambda: metrics.cpu)
    if services.cluster is not None:
        metrics.load = services.cluster.figures
        app.cleanup_ctx.append(_cluster)  # before _lifecycle: its leases are released after the sessions stop
    app.cleanup_ctx.append(_lifecycle)
    app.cleanup_ctx.append(exports.lifecycle)  # after _lifecycle: the worker stops before the database closes
    app.cleanup_ctx.append(_metrics_listener)
    return app


async def _metrics_listener(app: web.Application) -> AsyncIterator[None]:
    """The sampler, and /metrics on its own listener (`metrics_port`): the public port never serves it."""
    metrics, st = app[METRICS], app[SERVICES].settings
    metrics.start()
    runner: web.AppRunner | None = None
    if st.metrics_port is not None:
        runner = web.AppRunner(metrics_app(metrics), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, st.metrics_host, st.metrics_port).start()
    yield
    if runner is not None:
        await runner.cleanup()
    await metrics.stop()


def node_id_of(url: str) -> str:
    """A node's default id from its address: `http://10.0.0.2:8080` -> `10.0.0.2-8080` (a valid proxy server name)."""
    netloc = url.split("://", 1)[-1].split("/", 1)[0]
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in netloc)


async def _cluster(app: web.Application) -> AsyncIterator[None]:
    cluster = app[SERVICES].cluster
    assert cluster is not None

    async def lost(session_id: int) -> None:
        """Another node owns the session now: stop the local copy at once (its recorder writes nothing more);
        the people's clients reconnect and are sent to the owner."""
        sv = app[SERVICES]
        live = sv.live.get(session_id)
        if live is None:
            return
        ns = app[NAMESPACE]
        for (sid, _pid), conn_sid in list(ns.sids.items()):
            if sid == session_id:
                await ns.disconnect(conn_sid)
        await let_go(sv.live.close(session_id) or live)  # nothing more written: the new owner goes on

    cluster.on_lost = lost
    await cluster.start()
    yield
    await cluster.stop()


async def _healthz(request: web.Request) -> web.Response:
    sv = request.app[SERVICES]
    await sv.db.ping()
    node = sv.cluster.node_id if sv.cluster is not None else None
    return web.json_response({"ok": True, "rooms": len(sv.live.all()), "node": node})


def _static(app: web.Application, web_dir: Path) -> None:
    for path, page in PAGES.items():
        app.router.add_get(path, _page(web_dir / page))
    async def home(_r: web.Request) -> web.Response:
        raise web.HTTPFound("/console")

    app.router.add_get("/", home)
    vendor = web_dir / "node_modules" / "socket.io-client" / "dist"
    if vendor.is_dir():
        app.router.add_static("/vendor/socket.io/", vendor)
    for sub in ("js", "css", "img"):
        if (web_dir / sub).is_dir():
            app.router.add_static(f"/{sub}/", web_dir / sub)


def _page(file: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(_r: web.Request) -> web.StreamResponse:
        return web.FileResponse(file)
    return handler


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    await asyncio.to_thread(app[SERVICES].prepare_keys)
    await asyncio.to_thread(accounts.dummy_hash)  # before the first login of an unknown name
    try:  # the directory file's courts (or the development courts) into the courts table, then every row
        await tenancy.seed_courts(app[SERVICES].db, app[SERVICES].courts)
    except Exception as e:
        if not unreachable(e):
            raise
        log.warning("database unreachable at start-up: courts from the directory file only until a lookup reloads")
    yield
    sv = app[SERVICES]
    await app[PUBLISHER].close()
    for live in sv.live.all():
        await live.close()  # reconnect grace timers
        if live.recorder is not None:
            await live.recorder.stop("server shutdown", actor="server")
        if live.caucus_recorder is not None:
            await live.caucus_recorder.stop("server shutdown", actor="server")
        if live.media is not None:
            await live.media.close()
    if isinstance(app[SIO].manager, RedisManager):
        await app[SIO].manager.close()
    if SHARED_REDIS in app:
        await app[SHARED_REDIS].aclose()
    await sv.db.close()


