"""`onedoor keys ...`, `onedoor recordings ...`, `onedoor retention ...`: recordings administration from the shell.

Every read of a recording made here is an audit entry with the operating-system user as actor and a reason. Like
signaling/cli_admin.py, these load the database, keys and recordings store only, not the server.
"""

from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path

from recordings import keys, retention
from recordings.export import export
from recordings.recover import recover
from signaling.cli_admin import Store, run_with_store
from signaling.cluster import LeaseProbe


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def keys_rotate(a: argparse.Namespace) -> int:
    async def go(sv: Store) -> int:
        old = sv.keys.current_master_id
        new = sv.keys.add_master_key()
        n = await keys.rotate(sv.db, sv.keys, actor=_actor())
        sv.keys.drop_master_key(old)
        print(f"re-wrapped {n} data keys under {new}; retired {old}")
        return 0
    return run_with_store(a, go)


def recordings_recover(a: argparse.Namespace) -> int:
    """With --redis-url (nodes of several), a recording whose session a node owns now is being continued there
    (after a takeover) and is left alone, as a node's own start does; Redis unreachable: none is finalized."""
    async def go(sv: Store) -> int:
        probe = LeaseProbe(a.redis_url, "onedoor-cli") if getattr(a, "redis_url", None) else None
        try:
            reports = await recover(sv.db, sv.storage, sv.keys, actor=_actor(),
                                    continued_elsewhere=probe.elsewhere if probe is not None else None)
        finally:
            if probe is not None:
                await probe.aclose()
        print(json.dumps([r.__dict__ for r in reports], ensure_ascii=False, indent=2))
        return 0 if all(r.status != "corrupt" for r in reports) else 1
    return run_with_store(a, go)


def recordings_export(a: argparse.Namespace) -> int:
    async def go(sv: Store) -> int:
        res = await export(sv.db, sv.storage, sv.keys, a.recording_id, Path(a.out), actor=_actor(),
                           reason=a.reason, raw=a.raw)
        print(f"wrote {res.path} ({res.bytes} bytes, {res.duration_ms / 1000:.1f} s, sha256 {res.sha256})")
        return 0
    return run_with_store(a, go)


def retention_expire(a: argparse.Namespace) -> int:
    async def go(sv: Store) -> int:
        gone = await retention.expire(sv.db, actor=_actor(), storage=sv.storage)
        print(f"destroyed the keys of {len(gone)} recordings: {', '.join(gone) or '-'}")
        return 0
    return run_with_store(a, go)


def retention_set(a: argparse.Namespace) -> int:
    async def go(sv: Store) -> int:
        await retention.set_retention(sv.db, a.record_type, a.days, actor=_actor(), reason=a.reason)
        print(f"{a.record_type}: kept {a.days} days")
        return 0
    return run_with_store(a, go)


def retention_hold(a: argparse.Namespace) -> int:
    async def go(sv: Store) -> int:
        await retention.set_legal_hold(sv.db, a.recording_id, not a.release, actor=_actor(), reason=a.reason)
        print(f"{a.recording_id}: legal hold {'released' if a.release else 'set'}")
        return 0
    return run_with_store(a, go)
