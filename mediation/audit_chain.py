"""The audit chain's hashing rules (pure: no database), shared by the log (`mediation.audit`) and the court's
offline verifier (`mediation.agreements.verify`).

`content_hash = sha256(canonical_json(entry_content(...)))`, `hash = chain_hash(prev_hash, content_hash)`; the
first entry's `prev_hash` is `GENESIS`. A signed checkpoint covers `checkpoint_message(seq, hash)`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from mediation.canonical import canonical_json, sha256_hex

GENESIS = "0" * 64


def entry_content(
    seq: int, at: dt.datetime, actor: str, action: str, subject: str, detail: dict[str, Any], reason: str | None
) -> dict[str, Any]:
    return {
        "seq": seq,
        "at": at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": actor,
        "action": action,
        "subject": subject,
        "detail": detail,
        "reason": reason,
    }


def chain_hash(prev_hash: str, content_hash: str) -> str:
    return sha256_hex(f"{prev_hash}:{content_hash}".encode())


def checkpoint_message(seq: int, hash_: str) -> bytes:
    return canonical_json({"type": "onedoor-audit-checkpoint", "seq": seq, "hash": hash_})
