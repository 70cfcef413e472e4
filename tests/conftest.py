"""Shared fixtures: a real server on 127.0.0.1 with an ephemeral port, on SQLite or (when
ONEDOOR_TEST_DATABASE_URL is set) PostgreSQL, migrated with the real Alembic migrations."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.orm import configure_mappers

from media.bots import Bot
from media.channels import SocketIOChannel
from media.config import MediaConfig
from media.hub import Hub
from mediation import accounts, cases, schema, sessions
from mediation.db import secure_sqlite_file, utcnow
from mediation.identity import MemoryCodeSender
from mediation.models import Center
from signaling.app import create_app
from signaling.client import SessionClient
from signaling.config import Settings
from signaling.services import SERVICES, Services
from tests import hostaddrs
from tests.loopblock import _fail_on_blocked_loop, pytest_configure, pytest_runtest_call  # noqa: F401 (plugin)

PASSWORD = "correct-horse-battery"


@pytest.fixture(scope="session", autouse=True)
def _process_warm_up() -> None:
    """Once-per-process work done here, as known setup, rather than inside the first test that needs it (where
    tests/loopblock.py would see it block the loop): SQLAlchemy configures every mapper at the first ORM use
    (~150 ms of CPU), and the first Hub checks the aiortc internals media/ relies on (~50-150 ms)."""
    configure_mappers()
    Hub("warm-up", MediaConfig(), _no_send)


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashes() -> Iterator[None]:
    """Staff seeded by the tests get argon2id hashes with the cheapest parameters: the standard ones cost ~0.25 s a
    hash and again a login on these two cores, ~2 s of every test that seeds a center. What is under test is the
    login, not argon2's cost; a guess at an unknown name is still checked at the standard cost (accounts.dummy_hash),
    which is what the login-flood test measures."""
    standard = accounts.HASHER
    accounts.HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    yield
    accounts.HASHER = standard


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The schema migrated once per test process with the real Alembic migrations (~1.2 s here); each test starts
    from a copy of it (made 0600 in a 0700 directory, as the server makes it). The migrations still run in full:
    here, in the `onedoor` commands the subprocess tests start, and for every test on PostgreSQL (`make test-pg`)."""
    db = tmp_path_factory.mktemp("migrated") / "onedoor.db"
    schema.upgrade(f"sqlite+aiosqlite:///{db}")
    return db

hostaddrs.install()  # no ICE host candidate on another test's rig addresses (tests/hostaddrs.py)

# Tests that use something the whole machine shares run one after another in one worker when the suite runs in
# several processes (pytest-xdist, `--dist loadgroup`; docs/performance.md "The test suite"). Two such groups, each
# serial in itself, the two beside each other:
# - "stores": the machine's Redis (tests/cluster/test_failover.py restarts it), HAProxy and the veth pairs in
#   10.76.* (the cluster's, the host-address test's), and /tmp scanned for plaintext by the export test;
# - "links": the link emulator's namespaces (10.77-10.82.*), coturn on 443 of an emulated address, and the timing
#   measurements of Chromium publishers (three Chromiums in the weak-party test; the layers browser test's
#   publisher starved beside them on two cores: 0.04-0.2 of the frames in two clean-clone runs).
MACHINE_WIDE = {
    "stores": (
        "tests/cluster/",
        "tests/media/test_host_addresses.py",
        "tests/foundation/test_redis.py",
        "tests/foundation/test_shared_limits.py",
        "tests/recordings/test_export.py",
        "tests/recordings/test_export_jobs_redis.py",
    ),
    "links": (
        "tests/netem/",
        "tests/media/test_layers_browser.py",
    ),
}


def pytest_itemcollected(item: pytest.Item) -> None:  # marked as collected: before xdist's own hooks read marks
    path = item.path.relative_to(item.config.rootpath).as_posix()
    for group, prefixes in MACHINE_WIDE.items():
        if path.startswith(prefixes):
            item.add_marker(pytest.mark.xdist_group(group))
            if group == "links":
                # what a person hears and sees in real time, beside three browsers, a link emulator and the other
                # workers' tests, starved at load 4-5 (docs/performance.md): `make test` runs these alone, last
                item.add_marker(pytest.mark.realtime)


async def _no_send(participant_id: str, event: str, payload: dict[str, Any]) -> None:
    return None


@pytest.fixture
async def db_url(tmp_path: Path, _migrated_sqlite: Path) -> str:
    url = os.environ.get("ONEDOOR_TEST_DATABASE_URL")
    if not url:
        url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'onedoor.db'}"
        secure_sqlite_file(url)  # 0600 in a 0700 directory, as the server makes it; the copy keeps the mode
        shutil.copyfile(_migrated_sqlite, tmp_path / "data" / "onedoor.db")
        return url
    else:
        eng = create_async_engine(url)
        async with eng.begin() as c:
            await c.execute(text("DROP SCHEMA public CASCADE"))
            await c.execute(text("CREATE SCHEMA public"))
        await eng.dispose()
    await asyncio.to_thread(schema.upgrade, url)
    return url


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", key_dir=tmp_path / "keys", database_url=db_url,
                    code_sender=MemoryCodeSender(), event_burst=200, events_per_second=100)


@dataclass
class World:
    """A seeded center: staff of every role, one case with sides A and B, one session with invites."""

    base_url: str
    services: Services
    case_code: str = ""
    session_id: int = 0
    tokens: dict[str, str] = field(default_factory=dict)  # "A", "B", guest roles -> invite token
    invite_ids: dict[str, int] = field(default_factory=dict)
    clients: list[SessionClient] = field(default_factory=list)

    @property
    def codes(self) -> dict[str, str]:
        sender = self.services.settings.code_sender
        assert isinstance(sender, MemoryCodeSender)
        return sender.sent

    def client(self) -> SessionClient:
        c = SessionClient(self.base_url)
        self.clients.append(c)
        return c

    async def staff(self, username: str, session: bool = True) -> SessionClient:
        c = self.client()
        await c.login(username, PASSWORD)
        if session:
            await c.join_staff(self.session_id)
        return c

    async def party(self, who: str) -> SessionClient:
        c = self.client()
        await c.join_invite(self.tokens[who])
        return c

    async def ready(self, c: SessionClient, who: str, *, recording: bool = True) -> None:
        """Identity check by one-time code, notices, consents: what a party does in the lobby."""
        await c.call("identity:start", {"method": "otp"})
        await c.call("identity:answer", {"code": self.codes[f"invite:{self.invite_ids[who]}"]})
        await c.call("lobby:consent", {"kind": "notices", "granted": True})
        await c.call("lobby:consent", {"kind": "online", "granted": True})
        await c.call("lobby:consent", {"kind": "recording", "granted": recording})


    async def trio(self) -> tuple[SessionClient, SessionClient, SessionClient]:
        """The mediator (host) and both parties, identity-checked, consented and admitted."""
        m = await self.staff("mediator")
        a, b = await self.party("A"), await self.party("B")
        await self.ready(a, "A")
        await self.ready(b, "B")
        await m.call("lobby:admit-all")
        for c in (a, b):
            await c.wait(lambda c: c.state.get("you", {}).get("admitted") is True)
        return m, a, b


STAFF = {"mediator": "mediator", "mediator2": "mediator", "clerk": "intake_clerk", "admin": "admin",
         "judge": "court_judge", "psych": "staff_psychologist"}


async def record_trio(m: SessionClient, a: SessionClient, b: SessionClient, seconds: float) -> str:
    """The three publish real media (bots) while the mediator `m` records for `seconds`; the recording's id."""
    bots = [Bot(c.pid, SocketIOChannel(c.sio)) for c in (m, a, b)]
    try:
        for bot in bots:
            await bot.join()
        rid = str((await m.call("recording:start", {}))["recording"])
        await a.wait(lambda c: c.state["recording"] == "running")
        await asyncio.sleep(seconds)
        await m.call("recording:stop", {"reason": "调解结束"})
    finally:
        for bot in bots:
            await bot.close()
    return rid


async def seed(sv: Services, guests: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    async with sv.db.session() as s:
        center = Center(code="QH-HX", name="湟中区社会治理综合服务中心", address="西宁市湟中区")
        s.add(center)
        await s.flush()
        users = {}
        for name, role in STAFF.items():
            users[name] = await accounts.create_user(s, center, username=name, password=PASSWORD, role=role,
                                                     display_name=name, actor="test",
                                                     court_id="court-huangzhong" if role == "court_judge" else None)
        case = await cases.create_case(
            s, center=center, title="邻里漏水纠纷", category="neighbours", channel="walk_in", actor="test",
            referring_court_id="court-huangzhong",  # 诉调: the court's judge may join the sessions (R22)
            people=[cases.PersonIn("A", "张三", phone="13800000001"), cases.PersonIn("B", "李四", phone="13800000002")],
        )
        sess, issued = await sessions.schedule(s, case, host_id=users["mediator"].id, at=utcnow(), actor="test",
                                               guests=guests or [("psychologist", "赵心理")])
    tokens, ids = {}, {}
    for inv, key in zip(issued, ["A", "B", *[g[0] for g in (guests or [("psychologist", "")])]], strict=True):
        tokens[key], ids[key] = inv.token, inv.invite_id
    return {"case": case.code, "session": sess.id, "tokens": tokens, "ids": ids}


@pytest.fixture
async def world(aiohttp_server: Any, settings: Settings) -> AsyncIterator[World]:
    app = create_app(settings)
    server = await aiohttp_server(app)
    sv = app[SERVICES]
    w = World(str(server.make_url("")).rstrip("/"), sv)
    seeded = await seed(sv)
    w.case_code, w.session_id, w.tokens, w.invite_ids = (seeded["case"], seeded["session"], seeded["tokens"],
                                                         seeded["ids"])
    yield w
    for c in w.clients:
        await c.close()
