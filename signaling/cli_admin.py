"""The operator's commands that work on the data alone (dispatched by `signaling.cli`): db upgrade, users add,
audit verify; and what every command shares: `settings_from` (the common options) and `run_with_store` (the
database, the keys and the recordings store, without the server).

Nothing of the web, Socket.IO, media or agreement stack is imported here or by the modules that use
`run_with_store` (signaling/cli_records.py): such a command starts in under a second of CPU rather than the ~3.5 s
of importing the server (tests/cli/test_cli.py checks which modules a command loads)."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from mediation import accounts, audit, schema, tenancy
from mediation.agreements.courts import CourtDirectory
from mediation.db import Database, private_dir
from mediation.keyring import KeyRing
from recordings.storage import RecordingStorage
from signaling.config import Settings
from signaling.stores import recording_storage

T = TypeVar("T")


def settings_from(a: argparse.Namespace) -> Settings:
    secret_file = getattr(a, "turn_secret_file", None)
    return Settings(data_dir=Path(a.data_dir), key_dir=Path(a.key_dir) if a.key_dir else None,
                    database_url=a.database_url, host=getattr(a, "host", "127.0.0.1"),
                    port=getattr(a, "port", 8080), base_url=a.base_url,
                    redis_url=getattr(a, "redis_url", None),
                    node_url=getattr(a, "node_url", None), node_id=getattr(a, "node_id", None),
                    metrics_port=getattr(a, "metrics_port", None),
                    metrics_host=getattr(a, "metrics_host", "127.0.0.1"),
                    ice_servers=[{"urls": [u]} for u in getattr(a, "ice_url", [])],
                    turn_urls=getattr(a, "turn_url", []),
                    turn_secret=Path(secret_file).read_text().strip() if secret_file else None,
                    s3_bucket=getattr(a, "s3_bucket", None), s3_endpoint=getattr(a, "s3_endpoint", None),
                    secure_cookies=getattr(a, "secure_cookies", False))


@dataclass
class Store:
    """What an operator's command works on: the database (migrated), the keys, the recordings."""

    settings: Settings
    db: Database
    keys: KeyRing
    storage: RecordingStorage

    def courts(self) -> CourtDirectory:
        assert self.settings.key_dir is not None
        return CourtDirectory.load_or_create_dev(self.settings.key_dir)


def run_with_store(a: argparse.Namespace, fn: Callable[[Store], Awaitable[T]]) -> T:
    settings = settings_from(a)
    private_dir(settings.data_dir)  # 0700: the database, recordings and everything else are the center's alone
    schema.upgrade(settings.db_url)
    key_dir = settings.key_dir
    assert key_dir is not None

    async def go() -> T:
        store = Store(settings, Database(settings.db_url, record=audit.append_many),
                      KeyRing.load_or_create(key_dir), recording_storage(settings))
        try:
            return await fn(store)
        finally:
            await store.db.close()
    return asyncio.run(go())


def db_upgrade(a: argparse.Namespace) -> int:
    settings = settings_from(a)
    private_dir(settings.data_dir)
    schema.upgrade(settings.db_url)
    print("database is at the latest schema")
    return 0


def users_add(a: argparse.Namespace) -> int:
    async def go(store: Store) -> int:
        courts = store.courts() if a.court_id else None
        if courts is not None:  # a judge sits in a court of the courts table (seeded from the directory file first)
            await tenancy.seed_courts(store.db, courts)
        async with store.db.session() as s:
            if courts is not None:
                await courts.lookup(s, a.court_id)
            center = await tenancy.first_center(s)
            u = await accounts.create_user(s, center, username=a.username, password=a.password, role=a.role,
                                           display_name=a.name, actor="cli", court_id=a.court_id)
            print(f"created {u.username} ({u.role})")
        return 0
    return run_with_store(a, go)


def audit_verify(a: argparse.Namespace) -> int:
    async def go(store: Store) -> int:
        async with store.db.session() as s:
            rep = await audit.verify(s, store.keys.public_key)
        print(json.dumps({"ok": rep.ok, "entries": rep.entries, "checkpoints": rep.checkpoints,
                          "problems": rep.problems}, ensure_ascii=False, indent=2))
        return 0 if rep.ok else 1
    return run_with_store(a, go)
