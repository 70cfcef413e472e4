"""`onedoor keys ...`, `onedoor recordings ...`, `onedoor retention ...`: recordings administration from the shell.

Every read of a recording made here is an audit entry with the operating-system user as actor and a reason.
"""

from __future__ import annotations

import argparse
import getpass
import json
from pathlib import Path
from typing import Any

from recordings import keys, retention
from recordings.export import export
from recordings.recover import recover
from signaling.cli import _run, command
from signaling.services import Services


def add_parsers(sub: Any, common: argparse.ArgumentParser) -> None:
    k = sub.add_parser("keys", parents=[common]).add_subparsers(dest="sub", required=True)
    k.add_parser("rotate", parents=[common], help="new master key; re-wrap every data key (media untouched)")
    r = sub.add_parser("recordings", parents=[common]).add_subparsers(dest="sub", required=True)
    r.add_parser("recover", parents=[common], help="verify every segment; finalize interrupted recordings")
    e = r.add_parser("export", parents=[common], help="decrypt to ONE playable file (or --raw tracks)")
    e.add_argument("recording_id")
    e.add_argument("--out", required=True)
    e.add_argument("--raw", action="store_true")
    e.add_argument("--reason", required=True, help="why it is read (logged, R10)")
    t = sub.add_parser("retention", parents=[common]).add_subparsers(dest="sub", required=True)
    t.add_parser("expire", parents=[common], help="destroy the keys of expired recordings not on legal hold")
    s = t.add_parser("set", parents=[common])
    s.add_argument("record_type")
    s.add_argument("days", type=int)
    s.add_argument("--reason", required=True)
    h = t.add_parser("hold", parents=[common])
    h.add_argument("recording_id")
    h.add_argument("--release", action="store_true")
    h.add_argument("--reason", required=True)


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@command("keys rotate")
def keys_rotate(a: argparse.Namespace) -> int:
    async def go(sv: Services) -> int:
        old = sv.keys.current_master_id
        new = sv.keys.add_master_key()
        n = await keys.rotate(sv.db, sv.keys, actor=_actor())
        sv.keys.drop_master_key(old)
        print(f"re-wrapped {n} data keys under {new}; retired {old}")
        return 0
    return int(_run(a, go))


@command("recordings recover")
def recordings_recover(a: argparse.Namespace) -> int:
    async def go(sv: Services) -> int:
        reports = await recover(sv.db, sv.storage, sv.keys, actor=_actor())
        print(json.dumps([r.__dict__ for r in reports], ensure_ascii=False, indent=2))
        return 0 if all(r.status != "corrupt" for r in reports) else 1
    return int(_run(a, go))


@command("recordings export")
def recordings_export(a: argparse.Namespace) -> int:
    async def go(sv: Services) -> int:
        res = await export(sv.db, sv.storage, sv.keys, a.recording_id, Path(a.out), actor=_actor(),
                           reason=a.reason, raw=a.raw)
        print(f"wrote {res.path} ({res.bytes} bytes, {res.duration_ms / 1000:.1f} s, sha256 {res.sha256})")
        return 0
    return int(_run(a, go))


@command("retention expire")
def retention_expire(a: argparse.Namespace) -> int:
    async def go(sv: Services) -> int:
        gone = await retention.expire(sv.db, actor=_actor(), storage=sv.storage)
        print(f"destroyed the keys of {len(gone)} recordings: {', '.join(gone) or '-'}")
        return 0
    return int(_run(a, go))


@command("retention set")
def retention_set(a: argparse.Namespace) -> int:
    async def go(sv: Services) -> int:
        await retention.set_retention(sv.db, a.record_type, a.days, actor=_actor(), reason=a.reason)
        print(f"{a.record_type}: kept {a.days} days")
        return 0
    return int(_run(a, go))


@command("retention hold")
def retention_hold(a: argparse.Namespace) -> int:
    async def go(sv: Services) -> int:
        await retention.set_legal_hold(sv.db, a.recording_id, not a.release, actor=_actor(), reason=a.reason)
        print(f"{a.recording_id}: legal hold {'released' if a.release else 'set'}")
        return 0
    return int(_run(a, go))
