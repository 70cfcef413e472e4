"""The electronic transcript (电子笔录, R11; issue 13 item 3).

A mediator writes entries during the session (speaker, time on the session's recording clock, text). Everyone
admitted on the writer's side of the caucus sees each entry live; entries written inside a caucus are privileged
(R9): only mediators read them back, and they never enter the closed transcript, the court's view or the bundle.

The host closes the transcript for review: its canonical document (mediation.transcript_format) is frozen and
hashed. Each party (or agent) then confirms it, or marks the passages it disputes, on its own device: the
response is signed with the device key bound to its invite (R17), and it answers whether the recording may
replace the transcript (R11: only if both parties agree; the answer is logged). The court reads the transcript
with the confirmations and disputes (`court_view`), and the bundle carries them for `onedoor verify`.

The clock: milliseconds since the session's first court-bound recording started, or, without one, since the
session went live (`clock` in the document says which).
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.access import Actor, Resource, check
from mediation.agreements import payloads
from mediation.canonical import sha256_hex
from mediation.casefile_records import Transcript, TranscriptEntry, TranscriptResponse
from mediation.db import Database, utcnow
from mediation.errors import Conflict, Forbidden, InvalidInput, NotFound
from mediation.live import LiveSession, Presence
from mediation.models import Case, Invite, MediationSession
from mediation.permissions import Action, allowed
from mediation.recording_records import Recording
from mediation.speech import DraftLine
from mediation.transcript_format import VERDICTS, check_response, response_payload, transcript_document

TEXT_MAX = 4000


def subject(case_code: str, session_id: int) -> str:
    return f"case:{case_code}/transcript:{session_id}"


def entry_json(e: TranscriptEntry) -> dict[str, Any]:
    return {"seq": e.seq, "speaker": e.speaker, "speaker_id": e.speaker_id, "at_ms": e.at_ms, "text": e.text,
            "source": e.source, "private": e.caucus, "written_at": e.written_at.isoformat()}


async def clock(s: AsyncSession, sess: MediationSession) -> tuple[str, Any]:
    """(label, origin) of the session's recording clock."""
    rec = (await s.scalars(select(Recording).where(Recording.session_id == str(sess.id),
                                                   Recording.privileged.is_(False))
                           .order_by(Recording.started_at))).first()
    if rec is not None:
        return f"recording:{rec.id}", rec.started_at
    origin = sess.live_at or sess.opened_at or sess.scheduled_at
    return "session_live", origin


def _check(actor: Actor, action: Action, session_id: int, case: Case) -> None:
    check(actor, action, Resource("session", center_id=case.center_id, session_id=session_id))


async def _load(s: AsyncSession, live: LiveSession) -> tuple[MediationSession, Case]:
    sess = await s.get(MediationSession, live.session_id)
    case = await s.get(Case, sess.case_id) if sess else None
    if sess is None or case is None:
        raise NotFound("no such session", code="session_not_found")
    return sess, case


async def write(db: Database, live: LiveSession, me: Presence, actor: Actor, *, speaker: str,
                speaker_id: str | None, text: str, at_ms: int | None = None, source: str = "typed",
                draft: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """Append one entry; returns it and who sees it live (the writer's side of the caucus). With `draft` (the id
    of a speech draft line shown to this writer), the entry is that draft accepted, as edited: its time and its
    caucus flag are the draft's, `source` is "speech", and the draft is gone from the live list."""
    text = "".join(ch for ch in text if ch >= " " or ch in "\n\t").strip()
    if not text or not speaker.strip():
        raise InvalidInput("speaker and text are required", code="invalid_input")
    inside = me.pid in live.caucus
    if draft is not None:
        d = live.drafts.get(draft)
        if d is None or me.pid not in draft_audience(live, bool(d["private"])):
            raise NotFound("no such draft line (accepted already, or not yours to see)", code="draft_not_found")
        inside, at_ms, source = bool(d["private"]), int(d["at_ms"]), "speech"
    async with db.session() as s:
        sess, case = await _load(s, live)
        _check(actor, Action.TRANSCRIPT_WRITE, live.session_id, case)
        if await s.get(Transcript, live.session_id) is not None:
            raise Conflict("笔录已提交确认，不能再修改 / the transcript was closed for review", code="transcript_closed")
        label, origin = await clock(s, sess)
        now_ms = max(0, int((utcnow() - origin).total_seconds() * 1000))
        when = now_ms if at_ms is None else max(0, min(at_ms, now_ms))
        seq = (await s.scalar(select(func.max(TranscriptEntry.seq))
                              .where(TranscriptEntry.session_id == live.session_id)) or 0) + 1
        e = TranscriptEntry(session_id=live.session_id, seq=seq, speaker=speaker.strip()[:200],
                            speaker_id=speaker_id, at_ms=when, text=text[:TEXT_MAX], caucus=inside, source=source,
                            written_by=actor.id, written_at=utcnow())
        s.add(e)
        try:
            await s.flush()
        except IntegrityError:
            raise Conflict("another entry was written at the same moment; write it again", code="retry") from None
        await audit.append(s, actor=actor.id, action="transcript.entry", subject=subject(case.code, live.session_id),
                           detail={"seq": seq, "at_ms": when, "clock": label, "caucus": inside,
                                   "text_sha256": sha256_hex(e.text.encode())})
        out = entry_json(e)
    if draft is not None:
        live.drafts.pop(draft, None)
        if inside:  # caucus material: those in the caucus and the mediators (who read caucus entries back)
            return out, [p.pid for p in live.admitted() if p.pid in live.caucus or p.is_mediator]
        return out, [p.pid for p in live.admitted()]
    return out, [p.pid for p in live.admitted() if live.same_side_of_caucus(me.pid, p.pid)]


# ---- speech drafts (mediation.speech, media.speech): suggested lines, never entries until accepted ---------------

DRAFTS_KEPT = 200


def draft_audience(live: LiveSession, caucus: bool) -> list[str]:
    """Who is shown a draft line: the admitted people who may write the transcript; a draft from inside a caucus
    only to those of them who may see caucus material (the mediators, who read caucus entries back, and anyone in
    the caucus): never to anyone outside it (R9)."""
    writers = [p for p in live.admitted() if allowed(p.role, Action.TRANSCRIPT_WRITE)]
    return [p.pid for p in writers if not caucus or p.is_mediator or p.pid in live.caucus]


async def draft(db: Database, live: LiveSession, line: DraftLine) -> tuple[dict[str, Any], list[str]]:
    """A recognizer's draft line as shown in the console (`transcript:draft`), on the transcript's clock, and who
    is shown it. `line`'s times are wall-clock milliseconds (media.speech); kept in `live.drafts` until accepted
    with `transcript:write {draft}` (a bounded list: the oldest unaccepted drafts are forgotten)."""
    async with db.session() as s:
        sess = await s.get(MediationSession, live.session_id)
        if sess is None:
            raise NotFound("no such session", code="session_not_found")
        label, origin = await clock(s, sess)
    origin_ms = int(time.time() * 1000 - (utcnow() - origin).total_seconds() * 1000)  # naive or aware alike
    p = live.people.get(line.speaker_id)
    out: dict[str, Any] = {"id": f"d{line.speaker_id}-{line.start_ms}", "speaker": p.name if p else line.speaker_id,
           "speaker_id": line.speaker_id, "at_ms": max(0, line.start_ms - origin_ms),
           "end_ms": max(0, line.end_ms - origin_ms), "clock": label, "text": line.text[:TEXT_MAX],
           "private": line.caucus, "source": "speech"}
    live.drafts[out["id"]] = out
    while len(live.drafts) > DRAFTS_KEPT:
        live.drafts.pop(next(iter(live.drafts)))
    return out, draft_audience(live, line.caucus)


async def view(db: Database, live: LiveSession, me: Presence, actor: Actor) -> dict[str, Any]:
    """The transcript as this person may see it; mediators also see caucus entries. With the closed document,
    its hash and the responses so far when it was closed."""
    async with db.session() as s:
        sess, case = await _load(s, live)
        _check(actor, Action.TRANSCRIPT_READ, live.session_id, case)
        label, _ = await clock(s, sess)
        rows = (await s.scalars(select(TranscriptEntry).where(TranscriptEntry.session_id == live.session_id)
                                .order_by(TranscriptEntry.seq))).all()
        entries = [entry_json(e) for e in rows if me.is_mediator or not e.caucus]
        closed = await s.get(Transcript, live.session_id)
        out: dict[str, Any] = {"session": live.session_id, "clock": label, "entries": entries, "closed": False}
        if closed is not None:
            out.update(closed=True, sha256=closed.sha256, document=json.loads(closed.document),
                       responses=[_response_json(r) for r in await _responses(s, live.session_id)])
        return out


async def close(db: Database, live: LiveSession, actor: Actor) -> dict[str, Any]:
    """Freeze the transcript (joint entries only) for the parties' review."""
    async with db.session() as s:
        sess, case = await _load(s, live)
        _check(actor, Action.TRANSCRIPT_CLOSE, live.session_id, case)
        if await s.get(Transcript, live.session_id) is not None:
            raise Conflict("笔录已提交确认 / already closed for review", code="transcript_closed")
        label, _ = await clock(s, sess)
        rows = (await s.scalars(select(TranscriptEntry).where(TranscriptEntry.session_id == live.session_id,
                                                              TranscriptEntry.caucus.is_(False))
                                .order_by(TranscriptEntry.seq))).all()
        if not rows:
            raise Conflict("笔录为空 / the transcript is empty", code="transcript_empty")
        doc = transcript_document(case_code=case.code, session_id=live.session_id, clock=label,
                                  closed_at=utcnow().isoformat(timespec="seconds"),
                                  entries=[entry_json(e) for e in rows])
        t = Transcript(session_id=live.session_id, document=doc.decode(), sha256=sha256_hex(doc),
                       closed_by=actor.id, closed_at=utcnow())
        s.add(t)
        try:
            await s.flush()
        except IntegrityError:
            raise Conflict("笔录已提交确认 / already closed for review", code="transcript_closed") from None
        await audit.append(s, actor=actor.id, action="transcript.closed", subject=subject(case.code, live.session_id),
                           detail={"sha256": t.sha256, "entries": len(rows), "clock": label})
        return {"session": live.session_id, "sha256": t.sha256, "document": json.loads(doc)}


def _disputes(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"seq": int(d["seq"]), "note": str(d.get("note", ""))[:1000]} for d in raw]


async def closed_for_review(s: AsyncSession, session_id: int) -> tuple[Transcript, Case]:
    """The session's transcript as closed for review, and its case (409 `transcript_open` before)."""
    sess = await s.get(MediationSession, session_id)
    case = await s.get(Case, sess.case_id) if sess else None
    if sess is None or case is None:
        raise NotFound("no such session", code="session_not_found")
    t = await s.get(Transcript, session_id)
    if t is None:
        raise Conflict("笔录尚未提交确认 / the transcript is not closed for review yet", code="transcript_open")
    return t, case


@dataclass(frozen=True)
class Answerer:
    """Who answers: a party or agent (its person), under the invite whose device key signs."""

    person_id: int | None
    invite_id: int | None
    role: str
    name: str


def _answerer(me: Presence) -> Answerer:
    return Answerer(me.person_id, me.invite_id, me.role.value, me.name)


async def prepare(db: Database, live: LiveSession, me: Presence, actor: Actor, *, verdict: str,
                  disputes: list[dict[str, Any]], recording_may_replace: bool) -> dict[str, Any]:
    """The exact bytes (base64) this party signs with its device key for this answer."""
    async with db.session() as s:
        t, case = await closed_for_review(s, live.session_id)
        _check(actor, Action.TRANSCRIPT_RESPOND, live.session_id, case)
        return prepare_answer(case, t, _answerer(me), verdict, disputes, recording_may_replace)


def prepare_answer(case: Case, t: Transcript, who: Answerer, verdict: str, disputes: list[dict[str, Any]],
                   recording_may_replace: bool) -> dict[str, Any]:
    payload = _payload(case, t, who, verdict, disputes, recording_may_replace)
    return {"payload": base64.b64encode(payload).decode(), "transcript_sha256": t.sha256}


def _payload(case: Case, t: Transcript, who: Answerer, verdict: str, disputes: list[dict[str, Any]],
             recording_may_replace: bool) -> bytes:
    if who.person_id is None:
        raise Forbidden("只有当事人和代理人确认笔录 / parties and agents confirm the transcript", code="not_a_party")
    if verdict not in VERDICTS:
        raise InvalidInput("verdict: confirmed or disputed", code="invalid_input")
    ds = _disputes(disputes)
    seqs = {e["seq"] for e in json.loads(t.document)["entries"]}
    if (verdict == "disputed") != bool(ds) or any(d["seq"] not in seqs for d in ds):
        raise InvalidInput("异议须指明笔录中的段落 / a dispute names passages of the transcript",
                           code="bad_dispute")
    return response_payload(case_code=case.code, session_id=t.session_id, transcript_sha256=t.sha256,
                            signer=f"person:{who.person_id}", verdict=verdict, disputes=ds,
                            recording_may_replace=recording_may_replace)


async def respond(db: Database, live: LiveSession, me: Presence, actor: Actor, *, verdict: str,
                  disputes: list[dict[str, Any]], recording_may_replace: bool, signature_b64: str
                  ) -> dict[str, Any]:
    """Verify the party's device-key signature over its answer and store it (one answer per party)."""
    async with db.session() as s:
        t, case = await closed_for_review(s, live.session_id)
        _check(actor, Action.TRANSCRIPT_RESPOND, live.session_id, case)
        return await store_answer(s, case, t, _answerer(me), verdict=verdict, disputes=disputes,
                                  recording_may_replace=recording_may_replace, signature_b64=signature_b64)


async def store_answer(s: AsyncSession, case: Case, t: Transcript, who: Answerer, *, verdict: str,
                       disputes: list[dict[str, Any]], recording_may_replace: bool, signature_b64: str
                       ) -> dict[str, Any]:
    """Check the answer's signature with the device key bound to the answerer's invite, store it, log it (the
    answer and, apart, the choice on the recording replacing the transcript). In the session or after it."""
    payload = _payload(case, t, who, verdict, disputes, recording_may_replace)
    inv = await s.get(Invite, who.invite_id) if who.invite_id else None
    if inv is None or inv.revoked or not inv.device_key:
        raise Forbidden("此设备未绑定签名密钥 / no device key is bound to this invite", code="no_device_key")
    spki = base64.b64decode(inv.device_key)
    sig = payloads.decode_b64(signature_b64, "signature")
    signer = f"person:{who.person_id}"
    sub = subject(case.code, t.session_id)
    if not payloads.verify_signature(payloads.ECDSA_P256, spki, sig, payload):
        raise InvalidInput("签名无效 / the signature does not verify with your device key",
                           code="bad_signature").recorded(
            actor=signer, action="transcript.response_refused", subject=sub,
            reason="signature does not verify with the bound device key")
    row = TranscriptResponse(session_id=t.session_id, signer=signer, role=who.role, name=who.name,
                             invite_id=inv.id, payload=payload.decode(), algorithm=payloads.ECDSA_P256,
                             public_key=inv.device_key, key_fingerprint=payloads.key_fingerprint(spki),
                             signature=base64.b64encode(sig).decode(), signed_at=utcnow())
    s.add(row)
    try:
        await s.flush()
    except IntegrityError:
        raise Conflict("您已答复 / already answered", code="already_signed") from None
    await audit.append(s, actor=signer, action=f"transcript.{verdict}", subject=sub,
                       detail={"transcript_sha256": t.sha256, "disputes": _disputes(disputes),
                               "key_fingerprint": row.key_fingerprint,
                               "signature_sha256": sha256_hex(sig)})
    await audit.append(s, actor=signer, action="transcript.recording_choice", subject=sub,
                       detail={"recording_may_replace": bool(recording_may_replace)})
    return _response_json(row)


async def for_review(s: AsyncSession, session_id: int, person_id: int) -> dict[str, Any]:
    """A party's view after the session: the closed transcript (joint entries only), its hash, and this
    person's own answer if it gave one; `closed` false while it is still being written."""
    t = await s.get(Transcript, session_id)
    if t is None:
        return {"session": session_id, "closed": False}
    mine = await s.scalar(select(TranscriptResponse).where(TranscriptResponse.session_id == session_id,
                                                           TranscriptResponse.signer == f"person:{person_id}"))
    return {"session": session_id, "closed": True, "sha256": t.sha256, "closed_at": t.closed_at.isoformat(),
            "document": json.loads(t.document), "mine": _response_json(mine) if mine else None}


async def _responses(s: AsyncSession, session_id: int) -> list[TranscriptResponse]:
    q = select(TranscriptResponse).where(TranscriptResponse.session_id == session_id)
    return list((await s.scalars(q.order_by(TranscriptResponse.id))).all())


def _response_json(r: TranscriptResponse) -> dict[str, Any]:
    p = json.loads(r.payload)
    return {"signer": r.signer, "name": r.name, "role": r.role, "verdict": p["verdict"], "disputes": p["disputes"],
            "recording_may_replace": p["recording_may_replace"], "key_fingerprint": r.key_fingerprint,
            "signed_at": r.signed_at.isoformat()}


def response_record(r: TranscriptResponse) -> dict[str, Any]:
    """A response as the bundle carries it (everything `onedoor verify` needs)."""
    return {"signer": r.signer, "name": r.name, "role": r.role, "payload": r.payload, "algorithm": r.algorithm,
            "public_key": r.public_key, "key_fingerprint": r.key_fingerprint, "signature": r.signature,
            "signed_at": r.signed_at.isoformat(timespec="microseconds")}


async def closed_transcripts(s: AsyncSession, case_id: int) -> list[tuple[Transcript, list[TranscriptResponse]]]:
    q = (select(Transcript).join(MediationSession, MediationSession.id == Transcript.session_id)
         .where(MediationSession.case_id == case_id).order_by(Transcript.session_id))
    return [(t, await _responses(s, t.session_id)) for t in (await s.scalars(q)).all()]


async def court_view(s: AsyncSession, case_id: int) -> list[dict[str, Any]]:
    """The closed transcripts of a case with each party's confirmation or disputed passages (quoted), whether
    each signature verifies, and whether the recording may replace the transcript (every party agreed)."""
    out = []
    for t, responses in await closed_transcripts(s, case_id):
        doc = json.loads(t.document)
        text = {e["seq"]: e for e in doc["entries"]}
        rs = []
        for r in responses:
            item = _response_json(r)
            item["valid"] = check_response(t.document.encode(), response_record(r)) is None and \
                payloads.verify_signature(r.algorithm, base64.b64decode(r.public_key),
                                          base64.b64decode(r.signature), r.payload.encode())
            item["disputes"] = [{**d, "passage": text.get(d["seq"], {}).get("text", ""),
                                 "speaker": text.get(d["seq"], {}).get("speaker", "")} for d in item["disputes"]]
            rs.append(item)
        out.append({"session": t.session_id, "sha256": t.sha256, "closed_at": t.closed_at.isoformat(),
                    "clock": doc["clock"], "entries": doc["entries"], "responses": rs,
                    "disputed": any(r["verdict"] == "disputed" for r in rs),
                    "recording_may_replace": bool(rs) and all(r["recording_may_replace"] for r in rs)})
    return out
