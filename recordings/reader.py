"""Reading recordings back: the audited door to the data key (decrypting a stream is `recordings.decrypt`).

Every use of a recording's plaintext goes through `authorize_read()`, which writes the audit entry (who, what,
why) in the same transaction that unwraps the data key: no key without a log line. The permission decision
itself (may this user export this case's recording?) is the caller's, against the permission table.
"""

from __future__ import annotations

from typing import Any

from mediation import audit
from mediation.db import Database
from mediation.errors import InvalidInput
from mediation.keyring import KeyRing
from recordings import keys
from recordings.decrypt import (  # re-exported for tests (rec_helpers, test_writer)
    DecryptedStream,  # noqa: F401
    verify_stream,  # noqa: F401
)


async def authorize_read(
    db: Database,
    keyring: KeyRing,
    recording_id: str,
    *,
    actor: str,
    reason: str,
    action: str = "recording.read",
    detail: dict[str, Any] | None = None,
) -> bytes:
    """Log the read and return the recording's data key. `actor` and `reason` are mandatory (R10, R14)."""
    if not actor or not reason:
        raise InvalidInput("reading a recording needs an actor and a reason")
    async with db.session() as s:
        dk = await keys.load_data_key(s, keyring, recording_id)
        await audit.append(
            s,
            actor=actor,
            action=action,
            subject=f"recording:{recording_id}",
            detail=detail or {},
            reason=reason,
        )
    return dk
