"""`onedoor` command line. Every command takes --data-dir/--database-url/--key-dir, so a second command works on
the data of a running server."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select

from mediation import accounts, audit, cases, schema, sessions
from mediation.db import utcnow
from mediation.errors import OneDoorError
from mediation.models import Center, StaffUser
from signaling.config import Settings
from signaling.services import Services

log = logging.getLogger("onedoor")
DEMO_PASSWORD = "onedoor-demo-2026"
DEMO_NAMES = ["张三", "李四", "王五", "赵六", "孙七", "周八", "吴九", "郑十"]  # development only; printed by `onedoor demo`
COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def settings_from(a: argparse.Namespace) -> Settings:
    secret_file = getattr(a, "turn_secret_file", None)
    return Settings(data_dir=Path(a.data_dir), key_dir=Path(a.key_dir) if a.key_dir else None,
                    database_url=a.database_url, host=getattr(a, "host", "127.0.0.1"),
                    port=getattr(a, "port", 8080), base_url=a.base_url,
                    redis_url=getattr(a, "redis_url", None),
                    ice_servers=[{"urls": [u]} for u in getattr(a, "ice_url", [])],
                    turn_urls=getattr(a, "turn_url", []),
                    turn_secret=Path(secret_file).read_text().strip() if secret_file else None,
                    s3_bucket=getattr(a, "s3_bucket", None), s3_endpoint=getattr(a, "s3_endpoint", None),
                    secure_cookies=getattr(a, "secure_cookies", False))


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default="var/data", help="database and recordings (default var/data)")
    common.add_argument("--key-dir", default=None, help="keys, kept apart from data (default <data-dir>/../keys)")
    common.add_argument("--database-url", default=None, help="e.g. postgresql+asyncpg://user@host/db")
    common.add_argument("--base-url", default=None, help="the server's public URL, for printed links")
    p = argparse.ArgumentParser(prog="onedoor", description="OneDoor video mediation server")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", parents=[common], help="run the server")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8080)
    s.add_argument("--redis-url", default=None, help="Socket.IO across nodes (AsyncRedisManager)")
    s.add_argument("--ice-url", action="append", default=[], help="a STUN/TURN URL offered to clients (repeatable)")
    s.add_argument("--turn-url", action="append", default=[], help="coturn URL for per-join credentials (repeatable)")
    s.add_argument("--turn-secret-file", default=None, help="file holding coturn's static-auth-secret")
    s.add_argument("--s3-bucket", default=None, help="store recordings in this S3-compatible bucket")
    s.add_argument("--s3-endpoint", default=None)
    s.add_argument("--secure-cookies", action="store_true", help="behind HTTPS")
    sub.add_parser("demo", parents=[common], help="create a demo center, staff accounts and a case; print links")
    u = sub.add_parser("users", parents=[common], help="manage staff accounts").add_subparsers(dest="sub",
                                                                                                 required=True)
    ua = u.add_parser("add", parents=[common])
    ua.add_argument("username")
    ua.add_argument("--role", required=True)
    ua.add_argument("--name", required=True)
    ua.add_argument("--password", required=True)
    ua.add_argument("--court-id", default=None)
    db = sub.add_parser("db", parents=[common]).add_subparsers(dest="sub", required=True)
    db.add_parser("upgrade", parents=[common], help="apply migrations")
    au = sub.add_parser("audit", parents=[common]).add_subparsers(dest="sub", required=True)
    au.add_parser("verify", parents=[common], help="check the hash chain and signed checkpoints")
    from signaling import cli_records, cli_simulate, cli_verify

    cli_records.add_parsers(sub, common)
    cli_simulate.add_parsers(sub, common)
    cli_verify.add_parsers(sub, common)
    return p


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    a = parser().parse_args(argv)
    key = a.cmd + (f" {a.sub}" if getattr(a, "sub", None) else "")
    try:
        return COMMANDS[key](a)
    except OneDoorError as e:
        print(f"error: {e.message} ({e.code})", file=sys.stderr)
        return 2


def command(name: str) -> Callable[[Callable[[argparse.Namespace], int]], Callable[[argparse.Namespace], int]]:
    def deco(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
        COMMANDS[name] = fn
        return fn
    return deco


def _run(a: argparse.Namespace, fn: Callable[[Services], Any]) -> Any:
    settings = settings_from(a)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    schema.upgrade(settings.db_url)

    async def go() -> Any:
        sv = Services.build(settings)
        try:
            return await fn(sv)
        finally:
            await sv.db.close()
    return asyncio.run(go())


@command("db upgrade")
def db_upgrade(a: argparse.Namespace) -> int:
    settings = settings_from(a)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    schema.upgrade(settings.db_url)
    print("database is at the latest schema")
    return 0


@command("serve")
def serve(a: argparse.Namespace) -> int:
    from aiohttp import web

    from signaling.app import create_app

    settings = settings_from(a)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    if settings.db_url.startswith("sqlite"):
        schema.upgrade(settings.db_url)
    asyncio.run(_recover_at_start(settings))
    app = create_app(settings)
    print(f"OneDoor serving on {settings.public_url}  (mediator console: {settings.public_url}/console)",
          flush=True)
    web.run_app(app, host=settings.host, port=settings.port, print=None)
    return 0


async def _recover_at_start(settings: Settings) -> None:
    """Recordings interrupted by a crash are verified and finalized before serving (issue 4)."""
    from recordings.recover import recover

    sv = Services.build(settings)
    try:
        for r in await recover(sv.db, sv.storage, sv.keys, actor="startup", only_interrupted=True):
            log.warning("recording %s recovered: %s %s", r.recording_id, r.status, "; ".join(r.problems))
    finally:
        await sv.db.close()


@command("users add")
def users_add(a: argparse.Namespace) -> int:
    async def go(sv: Services) -> int:
        async with sv.db.session() as s:
            center = await ensure_center(s)
            u = await accounts.create_user(s, center, username=a.username, password=a.password, role=a.role,
                                           display_name=a.name, actor="cli", court_id=a.court_id)
            print(f"created {u.username} ({u.role})")
        return 0
    return int(_run(a, go))


@command("audit verify")
def audit_verify(a: argparse.Namespace) -> int:
    async def go(sv: Services) -> int:
        async with sv.db.session() as s:
            rep = await audit.verify(s, sv.keys.public_key)
        print(json.dumps({"ok": rep.ok, "entries": rep.entries, "checkpoints": rep.checkpoints,
                          "problems": rep.problems}, ensure_ascii=False, indent=2))
        return 0 if rep.ok else 1
    return int(_run(a, go))


async def ensure_center(s: Any) -> Center:
    center = await s.scalar(select(Center).order_by(Center.id).limit(1))
    if center is None:
        center = Center(code="QH-HX", name="湟中区社会治理综合服务中心 (demo)", address="西宁市湟中区")
        s.add(center)
        await s.flush()
    return center


async def ensure_user(s: Any, center: Center, username: str, role: str, name: str, **kw: Any) -> StaffUser:
    u = await s.scalar(select(StaffUser).where(StaffUser.username == username))
    if u is None:
        u = await accounts.create_user(s, center, username=username, password=DEMO_PASSWORD, role=role,
                                       display_name=name, actor="demo", **kw)
    return u


async def make_demo(sv: Services, parties: int = 2) -> dict[str, Any]:
    base = sv.settings.public_url
    async with sv.db.session() as s:
        center = await ensure_center(s)
        mediator = await ensure_user(s, center, "mediator", "mediator", "王调解员")
        await ensure_user(s, center, "judge", "court_judge", "李法官", court_id="court-huangzhong")
        await ensure_user(s, center, "admin", "admin", "管理员")
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
                "staff": ["mediator", "judge", "admin"],
                "invites": [{"name": i.name, "role": i.role, "link": i.link(base), "token": i.token,
                             "invite_id": i.invite_id} for i in issued]}


@command("demo")
def demo(a: argparse.Namespace) -> int:
    out = _run(a, make_demo)
    print(f"\nDemo case {out['case']} at {out['center']}, session {out['session']}")
    print(f"  Mediator console: {out['console']}  (user 'mediator', password '{out['staff_password']}')")
    for i in out["invites"]:
        print(f"  {i['role']:<7} {i['name']}: {i['link']}")
    print("  One-time identity codes are written to the server log (development sender).\n")
    return 0


if __name__ == "__main__":  # `python -m signaling.cli`: run the one registry the subcommand modules fill
    from signaling.cli import main as _main

    raise SystemExit(_main())
