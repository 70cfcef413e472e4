"""Time-limited TURN credentials in coturn's `use-auth-secret` format (the "TURN REST API").

username = "<expiry unix time>:<user id>", credential = base64(HMAC-SHA1(shared secret, username)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any


def turn_credentials(
    secret: str | bytes, ttl: int, user_id: str, urls: list[str], *, now: float | None = None
) -> dict[str, Any]:
    """Return an RTCIceServer dict ({"urls", "username", "credential", "ttl"}) valid for `ttl` seconds."""
    if ttl <= 0:
        raise ValueError("ttl must be positive")
    if ":" in user_id:
        raise ValueError("user_id must not contain ':'")
    key = secret.encode() if isinstance(secret, str) else secret
    expiry = int(now if now is not None else time.time()) + ttl
    username = f"{expiry}:{user_id}"
    digest = hmac.new(key, username.encode(), hashlib.sha1).digest()
    return {
        "urls": list(urls),
        "username": username,
        "credential": base64.b64encode(digest).decode("ascii"),
        "ttl": ttl,
    }
