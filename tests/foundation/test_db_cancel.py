"""A task cancelled in the middle of a transaction leaves nothing locked (the 30 s stall found in a test teardown).

The publisher's state push was cancelled at shutdown while it read the lobby; on SQLite every transaction holds
the write lock from its BEGIN IMMEDIATE, SQLAlchemy closes a cancelled transaction's connection without a
rollback, and Python's `sqlite3_close_v2` keeps a connection that still has a live statement as a zombie, lock
and all, until the garbage collector frees the statement. Every writer after it waited the whole busy timeout and
failed with "database is locked". Run on PostgreSQL too (`make test-pg`): a cancelled transaction must not hold
locks there either.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from mediation.db import Database

ROUNDS = 120


async def test_writers_get_in_after_readers_are_cancelled_mid_transaction(db_url: str) -> None:
    db = Database(db_url, busy_timeout=10.0)  # a leaked lock makes a write wait all of this, then fail
    try:
        async with db.session() as s:
            await s.execute(text("CREATE TABLE cancel_probe (n INTEGER)"))

        async def read() -> None:
            async with db.session() as s:
                await s.execute(text("SELECT * FROM cancel_probe"))
                await s.execute(text("SELECT count(*) FROM cancel_probe"))

        for n in range(ROUNDS):  # cancelled at different points: before BEGIN, in it, between the statements
            reader = asyncio.create_task(read())
            await asyncio.sleep((n % 24) * 0.0002)
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            async with db.session() as s:  # raised "database is locked" after the busy timeout before the fix
                await s.execute(text("INSERT INTO cancel_probe (n) VALUES (:n)"), {"n": n})

        async with db.session() as s:
            assert await s.scalar(text("SELECT count(*) FROM cancel_probe")) == ROUNDS
    finally:
        await db.close()
