"""Reviewing the electronic transcript after the session (电子笔录, R11; issue 13 item 3).

A party (or agent) that did not confirm or dispute the transcript before leaving does it later from its own
device, the way it fetches its documents (mediation.party_copies): the invite token and a signature by the device
key bound to that invite over a fresh single-use challenge, no login and no live session. The answer itself is
then signed by the same device key over the same canonical payload as in the session
(mediation.transcript_format.response_payload), so the court cannot tell, and need not care, where it was given.
Each call needs its own challenge (they are single-use).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit, transcript
from mediation.access import Resource, check
from mediation.casefile_records import Transcript
from mediation.db import Database
from mediation.models import Case
from mediation.party_copies import Proof, ProvenParty, prove_party
from mediation.permissions import Action


def _answerer(p: ProvenParty) -> transcript.Answerer:
    return transcript.Answerer(p.person.id, p.invite.id, p.invite.role, p.person.name)


class TranscriptReview:
    def __init__(self, db: Database, secret: bytes) -> None:
        self.db, self.secret = db, secret

    async def _closed(self, s: AsyncSession, proof: Proof) -> tuple[ProvenParty, Transcript, Case]:
        p = await prove_party(s, proof, self.secret)
        t, case = await transcript.closed_for_review(s, p.invite.session_id)
        check(p.actor, Action.TRANSCRIPT_RESPOND, Resource("session", center_id=case.center_id,
                                                           session_id=p.invite.session_id))
        return p, t, case

    async def view(self, proof: Proof) -> dict[str, Any]:
        """The session's transcript as closed for review (joint entries only) and this party's answer if given."""
        async with self.db.session() as s:
            p = await prove_party(s, proof, self.secret)
            out = await transcript.for_review(s, p.invite.session_id, p.person.id)
            await audit.append(s, actor=p.actor.id, action="transcript.read_after_session",
                               subject=transcript.subject(p.case.code, p.invite.session_id),
                               detail={"sha256": out.get("sha256")})
            return out

    async def prepare(self, proof: Proof, *, verdict: str, disputes: list[dict[str, Any]],
                      recording_may_replace: bool) -> dict[str, Any]:
        """The bytes (base64) to sign with the device key for this answer."""
        async with self.db.session() as s:
            p, t, case = await self._closed(s, proof)
            return transcript.prepare_answer(case, t, _answerer(p), verdict, disputes, recording_may_replace)

    async def respond(self, proof: Proof, *, verdict: str, disputes: list[dict[str, Any]],
                      recording_may_replace: bool, signature_b64: str) -> dict[str, Any]:
        """Store the signed answer (one per party; 409 `already_signed` if it answered in the session)."""
        async with self.db.session() as s:
            p, t, case = await self._closed(s, proof)
            return await transcript.store_answer(s, case, t, _answerer(p), verdict=verdict, disputes=disputes,
                                                 recording_may_replace=recording_may_replace,
                                                 signature_b64=signature_b64)
