"""Fixtures for the recordings tests: a real SQLite database, a real key ring (outside the data dir), storage."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import mediation.recording_records  # noqa: F401  (registers the tables)
from mediation.db import Base, Database
from mediation.keyring import KeyRing
from recordings.storage import LocalStorage


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
def keyring(tmp_path: Path) -> KeyRing:
    return KeyRing.load_or_create(tmp_path / "keys")


@pytest.fixture
async def db(data_dir: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite+aiosqlite:///{data_dir}/t.db")
    async with database.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield database
    await database.close()


@pytest.fixture
def storage(data_dir: Path) -> LocalStorage:
    return LocalStorage(data_dir / "recordings")
