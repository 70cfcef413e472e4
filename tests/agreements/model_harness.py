"""A real server per generated run, and the people who use it, for the workflow model test (issue 11).

Each run gets its own copy of a template database (migrated once; the staff logged in once: their login rows are
in the copy, so the same cookies work), its own server on 127.0.0.1 with an ephemeral port, a fresh case with
parties A and B and B's agent, a mediation session with everyone admitted. Keys are shared (one key dir).
The model runs in a worker thread; every call here is a coroutine run on the test's event loop.
"""

from __future__ import annotations

import asyncio
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp.test_utils import TestServer
from sqlalchemy import select

from mediation import accounts, cases, schema, sessions
from mediation.db import utcnow
from mediation.identity import MemoryCodeSender
from mediation.models import Center, StaffUser
from signaling.app import create_app
from signaling.client import SessionClient
from signaling.config import Settings
from signaling.services import SERVICES
from tests.conftest import PASSWORD

COURT = "court-huangzhong"
WHO = ("A", "B", "Bagent")


def id_number(serial: int) -> str:
    """A resident ID number with a valid GB 11643 check digit."""
    body = f"63012219900101{serial % 1000:03d}"
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights, strict=True)) % 11]


@dataclass
class Template:
    root: Path
    db_file: Path
    key_dir: Path
    consoles: dict[str, SessionClient]  # mediator, judge, admin: logged in once, cookies valid in every copy
    mediator_id: int = 0


async def make_template(root: Path) -> Template:
    data = root / "template"
    data.mkdir(parents=True)
    url = f"sqlite+aiosqlite:///{data / 'onedoor.db'}"
    await asyncio.to_thread(schema.upgrade, url)
    t = Template(root, data / "onedoor.db", root / "keys", {})
    settings = Settings(data_dir=data, key_dir=t.key_dir, database_url=url, code_sender=MemoryCodeSender(),
                        event_burst=500, events_per_second=500)
    app = create_app(settings)
    server = TestServer(app)
    await server.start_server()
    try:
        async with app[SERVICES].db.session() as s:
            center = Center(code="QH-HX", name="湟中区社会治理综合服务中心", address="西宁市湟中区")
            s.add(center)
            await s.flush()
            for name, role in (("mediator", "mediator"), ("judge", "court_judge"), ("admin", "admin")):
                u = await accounts.create_user(s, center, username=name, password=PASSWORD, role=role,
                                               display_name=name, actor="test",
                                               court_id=COURT if role == "court_judge" else None)
                if name == "mediator":
                    t.mediator_id = u.id
        base = str(server.make_url("")).rstrip("/")
        for name in ("mediator", "judge", "admin"):
            c = SessionClient(base)
            await c.login(name, PASSWORD)
            t.consoles[name] = c
    finally:
        await server.close()  # the app's cleanup closes its database
    return t


@dataclass
class Party:
    who: str
    person_id: int
    client: SessionClient | None = None
    token: str = ""
    invite_id: int = 0


@dataclass
class Run:
    """One generated run's server and people."""

    template: Template
    n: int
    server: TestServer | None = None
    base: str = ""
    code: str = ""
    session_id: int = 0
    mediator: SessionClient | None = None  # the mediator inside the current session
    parties: dict[str, Party] = field(default_factory=dict)
    sender: MemoryCodeSender = field(default_factory=MemoryCodeSender)

    async def start(self) -> None:
        data = self.template.root / f"run-{self.n}"
        data.mkdir()
        await asyncio.to_thread(shutil.copy, self.template.db_file, data / "onedoor.db")
        settings = Settings(data_dir=data, key_dir=self.template.key_dir,
                            database_url=f"sqlite+aiosqlite:///{data / 'onedoor.db'}", code_sender=self.sender,
                            event_burst=500, events_per_second=500)
        app = create_app(settings)
        self.server = TestServer(app)
        await self.server.start_server()
        self.base = str(self.server.make_url("")).rstrip("/")
        for c in self.template.consoles.values():
            c.base_url = self.base
        sv = app[SERVICES]
        async with sv.db.session() as s:
            center = await s.scalar(select(Center))
            assert center is not None
            case = await cases.create_case(
                s, center=center, title="邻里漏水纠纷", category="neighbours", channel="walk_in", actor="test",
                referring_court_id=COURT, people=[
                    cases.PersonIn("A", "张三", id_number=id_number(1), phone="13800000001",
                                   address="青海省西宁市湟中区鲁沙尔镇和平村1号"),
                    cases.PersonIn("B", "李四", id_number=id_number(2), phone="13800000002",
                                   address="青海省西宁市湟中区鲁沙尔镇和平村2号"),
                    cases.PersonIn("B", "王律师", kind="agent", represents=1, id_number=id_number(3),
                                   phone="13900000003", address="青海省西宁市城中区"),
                ])
            ids = {p.name: p.id for p in case.people}
            self.code = case.code
            mediator = await s.scalar(select(StaffUser).where(StaffUser.username == "mediator"))
            assert mediator is not None
            sess, issued = await sessions.schedule(s, case, host_id=mediator.id, at=utcnow(), actor="test")
        for who, name in zip(WHO, ("张三", "李四", "王律师"), strict=True):
            self.parties[who] = Party(who, ids[name])
        await self.enter(sess.id, {i.name: (i.token, i.invite_id) for i in issued})

    def names(self) -> dict[str, str]:
        return {"A": "张三", "B": "李四", "Bagent": "王律师"}

    async def enter(self, session_id: int, tokens: dict[str, tuple[str, int]]) -> None:
        """The mediator opens the session; each person joins with a new device, is checked and admitted."""
        self.session_id = session_id
        m = SessionClient(self.base)
        await m.http.close()
        console = self.template.consoles["mediator"]
        m.http, m.csrf = console.http, console.csrf
        await m.join_staff(session_id)
        self.mediator = m
        for who, p in self.parties.items():
            p.token, p.invite_id = tokens[self.names()[who]]
            p.client = SessionClient(self.base)
            await p.client.join_invite(p.token)
            await p.client.call("identity:start", {"method": "otp"})
            await p.client.call("identity:answer", {"code": self.sender.sent[f"invite:{p.invite_id}"]})
            for kind in ("notices", "online", "recording"):
                await p.client.call("lobby:consent", {"kind": kind, "granted": True})
        await m.call("lobby:admit-all")
        for p in self.parties.values():
            assert p.client is not None
            await p.client.wait(lambda c: c.state.get("you", {}).get("admitted") is True)

    async def reload(self, who: str) -> None:
        """The page is reloaded: the same device reconnects with the same link (admission is kept)."""
        p = self.parties[who]
        assert p.client is not None
        old = p.client
        await old.close()
        p.client = SessionClient(self.base, device_key=old.device_key)
        await p.client.join_invite(p.token)
        await p.client.wait(lambda c: c.state.get("you", {}).get("admitted") is True)

    async def end_session(self) -> None:
        assert self.mediator is not None
        await self.mediator.call("session:end", {"reason": "今天先到这里"})
        await self._leave()

    async def new_session(self) -> None:
        out = await self.template.consoles["mediator"].api("POST", f"/api/cases/{self.code}/sessions", {})
        await self.enter(out["session"]["id"], {i["name"]: (i["link"].split("#", 1)[1], i["id"])
                                                for i in out["invites"]})

    async def _leave(self) -> None:
        if self.mediator is not None and self.mediator.sio.connected:
            await self.mediator.sio.disconnect()
        self.mediator = None
        for p in self.parties.values():
            if p.client is not None:
                await p.client.close()
            p.client = None

    async def stop(self) -> None:
        await self._leave()
        if self.server is not None:
            await self.server.close()

