"""Persistence plumbing: the declarative base and an async engine wrapper (SQLite or PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import os
import socket
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, MetaData, Table, TypeDecorator, event, exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from mediation.errors import OneDoorError

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def transient(e: BaseException) -> bool:
    """`e` will likely not happen on a later try: the database is unreachable now, or (SQLite) another
    transaction held the write lock past the busy timeout."""
    return unreachable(e) or (isinstance(e, exc.OperationalError) and "database is locked" in str(e.orig))


def unreachable(e: BaseException) -> bool:
    """`e` says the database cannot be reached now (refused, reset, restarting, shutting down), not that a
    statement is wrong: the caller answers 503 and the pool's pre-ping replaces dead connections once it is
    back, so nothing needs a restart."""
    if isinstance(e, ConnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(e, exc.DBAPIError):
        if e.connection_invalidated:
            return True
        e = e.orig if e.orig is not None else e  # a wrong statement stays a 500 with its traceback
    name = type(e).__name__  # asyncpg's, through SQLAlchemy's adapter (PostgresConnectionError and kin)
    return name in {"ConnectionDoesNotExistError", "CannotConnectNowError", "AdminShutdownError",
                    "CrashShutdownError", "ConnectionFailureError", "TooManyConnectionsError"} \
        or isinstance(e.__cause__, ConnectionError | TimeoutError)


Recorder = Callable[[AsyncSession, list[dict[str, Any]]], Awaitable[object]]


class Database:
    """One engine per process; `async with db.session() as s:` gives a transaction. `record` appends the audit
    entries a refusal carries (`OneDoorError.recorded`) after its transaction was rolled back."""

    def __init__(self, url: str, *, echo: bool = False, record: Recorder | None = None,
                 busy_timeout: float = 30.0) -> None:
        """`busy_timeout` (SQLite): how long a transaction waits for another one's write lock."""
        self.url, self._record = url, record
        secure_sqlite_file(url)
        kwargs: dict[str, object] = {"echo": echo}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": busy_timeout, "factory": _SQLiteConnection}
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if url.startswith("sqlite"):
            busy_ms = int(busy_timeout * 1000)
            event.listen(self.engine.sync_engine, "connect",
                         lambda conn, record: _sqlite_pragmas(conn, record, busy_ms))
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin_immediate)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        try:
            async with self._sessions() as s, s.begin():
                yield s
        except OneDoorError as e:
            if e.records and self._record is not None:
                records, e.records = e.records, []  # once, even when sessions nest
                async with self._sessions() as s, s.begin():
                    await self._record(s, records)
            raise

    async def ping(self) -> None:
        """The database answers (outside any transaction: a health check waits for no writer)."""
        async with self.engine.connect() as c:
            c2 = await c.execution_options(isolation_level="AUTOCOMMIT")
            await c2.exec_driver_sql("SELECT 1")

    async def close(self) -> None:
        await self.engine.dispose()


class _SQLiteConnection(sqlite3.Connection):
    """SQLite: closing a connection rolls its transaction back first. SQLAlchemy closes a connection without a
    rollback when the task using it is cancelled mid-transaction (a push cancelled at shutdown, a timeout), and
    since Python 3.11 `close()` is `sqlite3_close_v2`: while a statement of that connection is still alive (a
    cursor held by the cancellation's traceback) the connection lives on as a zombie, holding the write lock of
    the BEGIN IMMEDIATE below, until the garbage collector frees the cursor. Every other writer meanwhile waited
    the whole busy timeout and failed with "database is locked" (tests/foundation/test_db_cancel.py)."""

    def close(self) -> None:
        try:
            if self.in_transaction:
                self.rollback()
        finally:
            super().close()


def _sqlite_pragmas(dbapi_conn: object, _record: object, busy_ms: int) -> None:
    dbapi_conn.isolation_level = None  # type: ignore[attr-defined]  # the driver's implicit BEGIN off: see below
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={busy_ms}")
    cur.close()


def _sqlite_begin_immediate(conn: object) -> None:
    """SQLite: every transaction takes the write lock when it begins (BEGIN IMMEDIATE), waiting up to the busy
    timeout. A deferred transaction that reads and then writes fails at once with "database is locked" when
    another writer got in between (no wait is possible: its snapshot is stale), which made concurrent writes
    answer 500. PostgreSQL needs none of this (row locks and unique constraints decide there)."""
    if conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT":  # type: ignore[attr-defined]
        return  # reads outside a transaction (the health check) take no lock
    conn.exec_driver_sql("BEGIN IMMEDIATE")  # type: ignore[attr-defined]


# ---- at rest: the data directory is private (issue 10) -------------------------------------------------------------

def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) as 0700, and make it 0700 if it already existed."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def secure_sqlite_file(url: str) -> None:
    """A SQLite database file is created 0600 in a 0700 directory before SQLite opens it; SQLite gives its -wal and
    -shm files the mode of the database file. Existing files are narrowed to 0600. Other backends: nothing to do."""
    u = make_url(url)
    if not u.drivername.startswith("sqlite") or not u.database or u.database == ":memory:":
        return
    db = Path(u.database)
    private_dir(db.parent)
    os.close(os.open(db, os.O_WRONLY | os.O_CREAT, 0o600))
    for f in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"), db.with_name(db.name + "-journal")):
        if f.exists():
            os.chmod(f, 0o600)


# ---- atomic writes: one statement decides, not a read before it (issue 10) ------------------------------------------

async def insert_or_ignore(s: AsyncSession, table: Table, values: Mapping[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING: True when this call inserted the row, False when a row with the same key
    was already there (or is being inserted by a concurrent transaction that then commits)."""
    ins = (postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)
    res = await s.execute(ins.values(**values).on_conflict_do_nothing())
    return bool(res.rowcount)  # type: ignore[attr-defined]


async def upsert(s: AsyncSession, table: Table, values: Mapping[str, Any], key: list[str],
                 update: Mapping[str, Any]) -> None:
    """INSERT ... ON CONFLICT (key) DO UPDATE SET update: one statement, so two concurrent writers cannot both
    insert (and the second never fails on the unique constraint)."""
    ins = (postgresql.insert if s.get_bind().dialect.name == "postgresql" else sqlite.insert)(table)
    await s.execute(ins.values(**values).on_conflict_do_update(index_elements=key, set_=dict(update)))
