"""Time-limited TURN credentials in coturn's `use-auth-secret` format (the "TURN REST API").

username = "<expiry unix time>:<user id>", credential = base64(HMAC-SHA1(shared secret, username)).

`ordered_urls` puts the TURN URL most likely to work first: aiortc (our bots) uses only the FIRST usable TURN URL
of a configuration, and a UDP TURN URL first stalls gathering ~5 s and never relays where UDP is blocked, while
TURN over TLS on 443 passes almost every firewall. Browsers use every URL, so the order costs them nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any


def _rank(url: str) -> int:
    """0: turns: on 443; 1: other turns:; 2: turn: over TCP; 3: turn: over UDP; 4: anything else (stun:)."""
    scheme, _, rest = url.partition(":")
    address, _, query = rest.partition("?")
    over_tcp = "transport=tcp" in query.lower()
    port = address.rsplit("]", 1)[-1].rpartition(":")[2] if ":" in address.rsplit("]", 1)[-1] else ""
    scheme = scheme.lower()
    if scheme == "turns":
        return 0 if port == "443" else 1
    if scheme == "turn":
        return 2 if over_tcp else 3
    return 4


def ordered_urls(urls: list[str]) -> list[str]:
    """TURN URLs, best first: turns: on 443, other turns:, turn: over TCP, turn: over UDP (stable otherwise)."""
    return sorted(urls, key=_rank)


def ordered_servers(servers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """RTCIceServer dicts with each one's URLs ordered, and the server holding the best TURN URL first."""
    out = []
    for entry in servers:
        urls = entry.get("urls")
        urls = [urls] if isinstance(urls, str) else list(urls or [])
        out.append({**entry, "urls": ordered_urls(urls)})
    return sorted(out, key=lambda e: min((_rank(u) for u in e["urls"]), default=4))


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
        "urls": ordered_urls(list(urls)),
        "username": username,
        "credential": base64.b64encode(digest).decode("ascii"),
        "ttl": ttl,
    }
