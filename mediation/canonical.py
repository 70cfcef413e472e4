"""Canonical serialization: the bytes that get hashed and signed (audit entries, agreements, manifests).

JSON with sorted keys, no whitespace, UTF-8 (not \\u-escaped), so a court's verifier can rebuild the exact bytes.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
