"""PostgreSQL and Redis going away and coming back under a running server (issue 14 item 4): API calls and
Socket.IO events answer a clear 503 `unavailable` with Retry-After meanwhile, the log gets a line per store instead
of a traceback per request, the people in the session stay connected, and everything works again without a
restart. The stores are the real local PostgreSQL and Redis, reached through a TCP forwarder
(tests/cluster/forward.py) that the test kills and starts again: a restart as the server sees it."""

from __future__ import annotations

import asyncio
import logging
import secrets
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

from mediation import schema
from mediation.db import Database, unreachable
from mediation.identity import MemoryCodeSender
from signaling.app import create_app
from signaling.client import ProtocolError
from signaling.config import Settings
from signaling.services import SERVICES
from tests.cluster.test_balancer import PG, ROOT, free_port, stores_missing
from tests.conftest import World, seed

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


class Forwarder:
    """127.0.0.1:<port> → PostgreSQL and Redis; `stop` drops every connection, `start` listens again."""

    def __init__(self) -> None:
        self.pg, self.redis = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen([sys.executable, str(ROOT / "tests/cluster/forward.py"),
                                      f"127.0.0.1:{self.pg}=127.0.0.1:5432",
                                      f"127.0.0.1:{self.redis}=127.0.0.1:6379"], stdout=subprocess.PIPE)
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == b"ready"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            assert self.proc.stdout is not None
            self.proc.stdout.close()
            self.proc = None


@pytest.fixture
def forwarder() -> Iterator[Forwarder]:
    f = Forwarder()
    f.start()
    yield f
    f.stop()


@pytest.fixture
async def outage_world(aiohttp_server: Any, tmp_path: Path, forwarder: Forwarder) -> AsyncIterator[World]:
    reason = await stores_missing()
    if reason:
        pytest.skip(reason)
    dbname = f"onedoor_outage_{secrets.token_hex(3)}"
    admin = create_async_engine(f"{PG}/postgres", isolation_level="AUTOCOMMIT")
    async with admin.connect() as c:
        await c.execute(text(f'CREATE DATABASE "{dbname}"'))
    try:
        await asyncio.to_thread(schema.upgrade, f"{PG}/{dbname}")
        port = free_port()
        settings = Settings(data_dir=tmp_path / "data", key_dir=tmp_path / "keys",
                            database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{forwarder.pg}/{dbname}",
                            redis_url=f"redis://127.0.0.1:{forwarder.redis}/8", node_id="node-outage",
                            node_url=f"http://127.0.0.1:{port}", code_sender=MemoryCodeSender(),
                            event_burst=200, events_per_second=100)
        app = create_app(settings)
        server = await aiohttp_server(app, port=port)
        w = World(str(server.make_url("")).rstrip("/"), app[SERVICES])
        seeded = await seed(w.services)
        w.case_code, w.session_id, w.tokens, w.invite_ids = (seeded["case"], seeded["session"],
                                                             seeded["tokens"], seeded["ids"])
        yield w
        for cl in w.clients:
            await cl.close()
        await server.close()
    finally:
        async with admin.connect() as c:
            await c.execute(text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        await admin.dispose()


async def status_of(w: World, client: Any, path: str) -> tuple[int, dict[str, Any], str | None]:
    async with client.http.get(w.base_url + path) as r:
        return r.status, await r.json(), r.headers.get("Retry-After")


async def test_database_and_redis_restart_answer_503_and_recover_without_a_restart(
        outage_world: World, forwarder: Forwarder, caplog: pytest.LogCaptureFixture) -> None:
    w = outage_world
    m, a, b = await w.trio()
    cases = f"/api/cases/{w.case_code}"
    assert (await status_of(w, m, cases))[0] == 200

    forwarder.stop()  # PostgreSQL and Redis are gone, every pooled connection with them
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        answers = [await status_of(w, m, cases) for _ in range(20)]
        health = await status_of(w, m, "/healthz")
        with pytest.raises(ProtocolError) as e:  # an event that needs the database
            await m.call("agreement:draft", {"template": "neighbours"})
        # the people in the session are still connected to it: nothing dropped them, not even once the session's
        # lease (5 s) has expired in the Redis that is away; meanwhile the export queue's worker (SAQ) polls
        # Redis every second and its tracebacks are filtered to the same one line per store
        await asyncio.sleep(w.services.settings.lease_ms / 1000 + 1)
        assert all(c.sio.connected for c in (m, a, b))
    assert {(st, body["error"]["code"], retry) for st, body, retry in answers} == {(503, "unavailable", "5")}
    assert health[0] == 503 and health[1]["error"]["code"] == "unavailable"
    assert e.value.code == "unavailable"
    outage_lines = [r for r in caplog.records if "unreachable" in r.getMessage()]
    lines = [r.getMessage() for r in caplog.records]
    # a line per store (and the cluster's own "sessions go on"), not one per request or per SAQ poll
    assert 1 <= len(outage_lines) <= 3 and len(lines) <= 10, lines
    assert not any(r.exc_info for r in caplog.records), lines  # and no tracebacks

    forwarder.start()  # back on the same addresses: no restart of the server
    async with asyncio.timeout(30):
        while (got := await status_of(w, m, cases))[0] != 200:  # noqa: ASYNC110  (polling the server)
            await asyncio.sleep(0.5)
    assert got[1]["case"]["code"] == w.case_code
    assert (await status_of(w, m, "/healthz"))[0] == 200
    drafted = await m.call("agreement:draft", {"template": "neighbours"})
    assert drafted["agreement"]["status"] == "draft"
    assert all(c.sio.connected for c in (m, a, b))


async def test_a_wrong_statement_is_not_an_outage(tmp_path: Path) -> None:
    """Only an unreachable store answers 503: a statement the database refuses stays an error with its traceback."""
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    try:
        with pytest.raises(DBAPIError) as e:
            async with db.session() as s:
                await s.execute(text("SELECT * FROM no_such_table"))
        assert not unreachable(e.value)
    finally:
        await db.close()
    assert unreachable(ConnectionRefusedError(111, "Connect call failed"))
