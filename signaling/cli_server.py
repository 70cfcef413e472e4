"""The commands of `onedoor` that need the server's stack (dispatched by `signaling.cli`): serve and demo (the
light ones are in signaling/cli_admin.py)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from sqlalchemy import select

from media.config import HostAddressPolicy
from media.passthrough import restrict_host_addresses
from mediation import accounts, cases, schema, sessions, tenancy
from mediation.db import private_dir, utcnow
from mediation.models import Center, StaffUser
from mediation.speech import SpeechSettings, load_recognizer
from recordings.recover import recover
from signaling.app import create_app, node_id_of
from signaling.cli_admin import settings_from
from signaling.cluster import LeaseProbe
from signaling.config import DEMO_PASSWORD, Settings
from signaling.services import SERVICES, Services

log = logging.getLogger("onedoor")
# development only; printed by `onedoor demo` (username, role, display name, extra)
DEMO_STAFF: list[tuple[str, str, str, dict[str, Any]]] = [
    ("mediator", "mediator", "王调解员", {}),
    ("judge", "court_judge", "李法官", {"court_id": "court-huangzhong"}),
    ("admin", "admin", "管理员", {}),
    ("clerk", "intake_clerk", "赵登记员", {}),
    ("psychologist", "staff_psychologist", "钱咨询师", {}),
]
PAGE_OF = {"court_judge": "/court"}
DEMO_NAMES = ["张三", "李四", "王五", "赵六", "孙七", "周八", "吴九", "郑十"]  # development only; printed by `onedoor demo`


def run_with_services(a: argparse.Namespace, fn: Callable[[Services], Any]) -> Any:
    settings = settings_from(a)
    private_dir(settings.data_dir)
    schema.upgrade(settings.db_url)

    async def go() -> Any:
        sv = Services.build(settings)
        try:
            return await fn(sv)
        finally:
            await sv.db.close()
    return asyncio.run(go())


def raise_fd_limit(want: int = 65536, enough: int = 8192) -> tuple[int, int]:
    """Each connection is a descriptor (a WebSocket, and several UDP sockets per peer connection): lift the soft
    limit towards the hard one, as far as `want` (systemd's default soft limit of 1,024 would cap a node below
    ~300 people). Returns (soft, hard) after; a soft limit still below `enough` (~2,000 people) is logged."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < enough:
        log.warning("open-file limit is %d (hard %d): raise LimitNOFILE for a busy node (deploy/README.md)",
                    soft, hard)
    return soft, hard


def serve(a: argparse.Namespace) -> int:
    settings = settings_from(a)
    private_dir(settings.data_dir)
    raise_fd_limit()
    if a.ice_network or a.ice_exclude:  # process-wide: every peer connection of this node (media/config.py)
        restrict_host_addresses(HostAddressPolicy.parse(a.ice_network, a.ice_exclude))
    if settings.db_url.startswith("sqlite"):
        schema.upgrade(settings.db_url)
    asyncio.run(_recover_at_start(settings))
    app = create_app(settings)
    if getattr(a, "speech_model", None):  # an offline engine the operator installed, with its model files
        app[SERVICES].speech = load_recognizer(SpeechSettings(a.speech_engine, Path(a.speech_model),
                                                              a.speech_threads))
    print(f"OneDoor serving on {settings.public_url}  (mediator console: {settings.public_url}/console)",
          flush=True)
    web.run_app(app, host=settings.host, port=settings.port, print=None)
    return 0


async def _recover_at_start(settings: Settings) -> None:
    """Recordings interrupted by a crash are verified and finalized before serving (issue 4). One node of several
    leaves alone those whose session another node owns now: that node is continuing them (issue 14)."""
    sv = Services.build(settings)
    probe = None
    if settings.node_url and settings.redis_url:
        probe = LeaseProbe(settings.redis_url, settings.node_id or node_id_of(settings.node_url))
    try:
        for r in await recover(sv.db, sv.storage, sv.keys, actor="startup", only_interrupted=True,
                               continued_elsewhere=probe.elsewhere if probe is not None else None):
            log.warning("recording %s recovered: %s %s", r.recording_id, r.status, "; ".join(r.problems))
    finally:
        if probe is not None:
            await probe.aclose()
        await sv.db.close()


async def ensure_user(s: Any, center: Center, username: str, role: str, name: str, **kw: Any) -> StaffUser:
    u = await s.scalar(select(StaffUser).where(StaffUser.username == username))
    if u is None:
        u = await accounts.create_user(s, center, username=username, password=DEMO_PASSWORD, role=role,
                                       display_name=name, actor="demo", **kw)
    return u


async def make_demo(sv: Services, parties: int = 2) -> dict[str, Any]:
    base = sv.settings.public_url
    await tenancy.seed_courts(sv.db, sv.courts)  # the development courts (keys under <key_dir>/courts) as rows
    async with sv.db.session() as s:
        center = await tenancy.first_center(s)
        mediator = await ensure_user(s, center, *DEMO_STAFF[0][:3])
        for username, role, name, kw in DEMO_STAFF[1:]:
            await ensure_user(s, center, username, role, name, **kw)
        case = await cases.create_case(
            s, center=center, title="邻里漏水纠纷 (demo)", category="neighbours", channel="walk_in",
            summary="楼上住户卫生间漏水, 楼下天花板受损", actor="demo", created_by=mediator.id,
            people=[cases.PersonIn("AB"[i % 2], name, phone=f"1380000{i + 1:04d}", address="湟中区鲁沙尔镇")
                    for i, name in enumerate(DEMO_NAMES[:parties])],
        )
        sess, issued = await sessions.schedule(s, case, host_id=mediator.id, at=utcnow() + dt.timedelta(minutes=5),
                                               actor="demo")
        return {"center": center.name, "case": case.code, "session": sess.id,
                "console": f"{base}/console", "staff_password": DEMO_PASSWORD,
                "staff": [{"username": u, "role": r, "name": n, "page": f"{base}{PAGE_OF.get(r, '/console')}"}
                          for u, r, n, _ in DEMO_STAFF],
                "invites": [{"name": i.name, "role": i.role, "link": i.link(base), "token": i.token,
                             "invite_id": i.invite_id} for i in issued]}


def demo(a: argparse.Namespace) -> int:
    out = run_with_services(a, make_demo)
    print(f"\nDemo case {out['case']} at {out['center']}, session {out['session']}")
    print(f"  Staff logins (every password: {out['staff_password']}):")
    for u in out["staff"]:
        print(f"    {u['username']:<13} {u['role']:<18} {u['name']:<8} {u['page']}")
    print("  Party invite links (open each in its own browser profile):")
    for i in out["invites"]:
        print(f"    {i['role']:<7} {i['name']}: {i['link']}")
    print("  One-time identity codes appear in this server's log, one line each: grep ONEDOOR-DEV-CODE")
    print("  (the development code sender; a production server sends them by SMS and never logs them)\n")
    return 0
