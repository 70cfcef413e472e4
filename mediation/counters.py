"""Named counters that never hand out a number twice, whatever the concurrency (issue 10).

`next_value` is one `UPDATE counters SET value = value + 1 ... RETURNING value`: the row lock (PostgreSQL) or the
write lock (SQLite) orders concurrent callers, so a count-then-insert race (two cases given one code) cannot
happen. A counter that does not exist yet starts from `initial` (e.g. how many codes were issued before it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.db import insert_or_ignore
from mediation.models import Counter


async def _bump(s: AsyncSession, name: str) -> int | None:
    return await s.scalar(update(Counter).where(Counter.name == name).values(value=Counter.value + 1)
                          .returning(Counter.value).execution_options(synchronize_session=False))


async def next_value(s: AsyncSession, name: str, initial: Callable[[], Awaitable[int]] | None = None) -> int:
    """The next number of counter `name` (1 for a new counter that starts from 0)."""
    n = await _bump(s, name)
    if n is None:
        start = await initial() if initial else 0
        await insert_or_ignore(s, Counter.__table__, {"name": name, "value": start})  # type: ignore[arg-type]
        n = await _bump(s, name)
        assert n is not None
    return n
