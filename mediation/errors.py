"""One error root with specific subclasses (style.md 5).

`code` is a stable machine-readable string sent to clients; `message` is safe to show users.
The mapping to HTTP statuses lives here too, so the transport layers translate errors in one place.
"""

from __future__ import annotations

from typing import Any


class OneDoorError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str = "", *, code: str | None = None, **detail: Any) -> None:
        super().__init__(message or self.__class__.__name__)
        if code:
            self.code = code
        self.message = message or self.code
        self.detail = detail
        self.records: list[dict[str, Any]] = []  # audit entries that outlive the rolled-back transaction

    def recorded(self, *, actor: str, action: str, subject: str, detail: dict[str, Any] | None = None,
                 reason: str | None = None) -> OneDoorError:
        """Put a refusal on record: `Database.session` appends it to the audit log in its own transaction after
        the failed one is rolled back (a refused attempt leaves its trace, and nothing else)."""
        self.records.append({"actor": actor, "action": action, "subject": subject, "detail": detail,
                             "reason": reason})
        return self

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.detail:
            out["detail"] = self.detail
        return out


class InvalidInput(OneDoorError):
    code = "invalid_input"
    status = 422


class Unauthenticated(OneDoorError):
    code = "unauthenticated"
    status = 401


class Forbidden(OneDoorError):
    code = "forbidden"
    status = 403


class NotFound(OneDoorError):
    code = "not_found"
    status = 404


class Conflict(OneDoorError):
    """The request is well-formed but not allowed in the current state (wrong stage, out of order...)."""

    code = "conflict"
    status = 409


class Expired(OneDoorError):
    code = "expired"
    status = 410


class TooLarge(OneDoorError):
    code = "too_large"
    status = 413


class RateLimited(OneDoorError):
    code = "rate_limited"
    status = 429


class IntegrityError(OneDoorError):
    """Tampered or corrupted data (audit chain, recording segment, bundle)."""

    code = "integrity"
    status = 422


class Unavailable(OneDoorError):
    """A store this needs (PostgreSQL, Redis) cannot be reached now: try again shortly (HTTP 503)."""

    code = "unavailable"
    status = 503
