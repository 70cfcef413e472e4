"""Errors raised by the media layer; all are `mediation.errors.OneDoorError` subclasses, so the transport
layer maps them to acks (`{"ok": false, "error": {"code", "message"}}`) in one place."""

from __future__ import annotations

from mediation.errors import Conflict, InvalidInput, NotFound, OneDoorError


class MediaError(OneDoorError):
    code = "media_error"
    status = 500


class MalformedSdp(InvalidInput):
    code = "malformed_sdp"


class UnsupportedCodec(InvalidInput):
    code = "unsupported_codec"


class UnknownEvent(InvalidInput):
    code = "unknown_event"


class UnknownParticipant(NotFound):
    code = "unknown_participant"


class NegotiationConflict(Conflict):
    """An answer arrived when no offer was outstanding, or a join raced another one."""

    code = "negotiation_conflict"


class CaucusConflict(Conflict):
    code = "caucus_conflict"


class AiortcInternalsChanged(MediaError):
    """The installed aiortc no longer matches what media/passthrough.py hooks (see check_aiortc_internals)."""

    code = "aiortc_internals_changed"
