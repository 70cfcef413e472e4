"""A live session's state as the durable record holds it, for the node that takes the session over after its owner
was lost (issue 14 item 4; docs/architecture.md, "Nodes").

Nothing new is written for this: what a new owner needs is already durable where it was decided. Admissions and
refusals are audited (`lobby.admit`, `lobby.refuse`; a refused link is also shut on its invite row, which every
node checks at connect), a caucus or private talk as `<kind>.open`/`<kind>.close`
with its members, the session's state is its row, and a recording that was running is its row in the recordings
table ("recording" or "paused"). `durable_live` reads them back; `LiveSession.restore` applies them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select

from mediation import audit, sessions
from mediation.db import Database
from mediation.recording_records import Recording

CAUCUS_KINDS = ("caucus", "private_talk")


@dataclass(frozen=True)
class DurableLive:
    admitted: frozenset[str]  # participant ids admitted (and not refused since)
    caucus: frozenset[str]  # members of the private room open when the owner was lost (empty: joint session)
    caucus_kind: str
    recordings: tuple[tuple[str, str], ...]  # (recording id, "recording" | "paused") of the joint recording
    ended: bool
    caucus_recording: str | None = None  # the privileged recording of the open caucus (center policy, R9)

    @property
    def anything(self) -> bool:
        return bool(self.admitted or self.caucus or self.recordings)


async def durable_live(db: Database, session_id: int) -> DurableLive:
    subject = f"session:{session_id}"
    admitted: set[str] = set()
    caucus: frozenset[str] = frozenset()
    kind = ""
    async with db.session() as s:
        entries = [e for e in await audit.entries_for(s, subject) if e.subject == subject]
        sess = await sessions.get_session(s, session_id)
        ended = sess.state == sessions.SessionState.ENDED
        q = select(Recording.id, Recording.status, Recording.privileged).where(
            Recording.session_id == str(session_id), Recording.status.in_(("recording", "paused"))
        ).order_by(Recording.started_at)
        rows = (await s.execute(q)).all()
        recordings = tuple((rid, st) for rid, st, privileged in rows if not privileged)
        privileged_running = [rid for rid, _, privileged in rows if privileged]
    for e in entries:
        detail = json.loads(e.detail or "{}")
        if e.action == "lobby.admit":
            admitted.add(str(detail.get("participant")))
        elif e.action == "lobby.refuse":
            admitted.discard(str(detail.get("participant")))
        else:
            room, _, what = e.action.partition(".")
            if room in CAUCUS_KINDS and what in ("open", "close"):
                members = frozenset(str(m) for m in detail.get("members", []))
                caucus, kind = (members, room) if what == "open" and members else (frozenset(), "")
    caucus_recording = privileged_running[-1] if caucus and privileged_running else None
    return DurableLive(frozenset(admitted), caucus, kind, recordings, ended, caucus_recording)
