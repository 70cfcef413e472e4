"""Shared by the agreement routes (agreement_api.py) and socket events (events_agreement.py): JSON views of the
agreement domain, the live `agreement:state` push, notices to the parties, and the case's recordings for a court.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import json
import logging
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.agreements import agreement as agreements
from mediation.agreements import confirmation, judging, package
from mediation.agreements.bundle import RecordingPart
from mediation.agreements.models import Agreement, ConfirmationApplication
from mediation.errors import Expired, NotFound
from mediation.models import Case
from mediation.permissions import SIDES
from mediation.recording_records import Recording, RecordingStream
from recordings import keys as rec_keys
from signaling.services import Services
from signaling.sockets import NS

log = logging.getLogger(__name__)
NOTICE = "parties.notified"


def jsonable(v: Any) -> Any:
    """Dataclasses, dicts and lists with datetimes as ISO 8601 strings."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        v = dataclasses.asdict(v)
    if isinstance(v, dict):
        return {k: jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [jsonable(x) for x in v]
    if isinstance(v, dt.datetime):
        return v.isoformat()
    return v


async def latest_agreement(s: AsyncSession, case_id: int) -> agreements.AgreementView | None:
    """The case's live agreement, or else its most recent one (a refused agreement stays visible)."""
    live = await agreements.agreement_for_case(s, case_id)
    if live is not None:
        return live
    a_id = (await s.scalars(select(Agreement.id).where(Agreement.case_id == case_id)
                            .order_by(Agreement.id.desc()))).first()
    return await agreements.get_agreement(s, a_id) if a_id else None


async def live_agreement_id(s: AsyncSession, case_id: int) -> int:
    view = await agreements.agreement_for_case(s, case_id)
    if view is None:
        raise NotFound("本案尚无调解协议 / this case has no agreement yet", code="no_agreement")
    return view.id


async def latest_application(s: AsyncSession, agreement_id: int) -> ConfirmationApplication | None:
    q = select(ConfirmationApplication).where(ConfirmationApplication.agreement_id == agreement_id)
    return (await s.scalars(q.order_by(ConfirmationApplication.id.desc()))).first()


async def agreement_json(s: AsyncSession, view: agreements.AgreementView) -> dict[str, Any]:
    out = jsonable(view)
    out["problems"] = await agreements.check_draft(s, view.id) if view.status == "draft" else []
    return dict(out)


async def application_json(s: AsyncSession, application_id: int) -> dict[str, Any]:
    view = await confirmation.get_application(s, application_id)
    out = jsonable(view)
    out["missing"] = await package.missing_items(s, application_id)
    ruling = await judging.ruling_for(s, application_id)
    out["ruling"] = jsonable(ruling) if ruling else None
    return dict(out)


async def case_state(s: AsyncSession, case: Case) -> dict[str, Any]:
    """What every admitted participant sees: the agreement (with its problems while a draft) and the application."""
    view = await latest_agreement(s, case.id)
    if view is None:
        return {"case": case.code, "agreement": None, "application": None}
    app = await latest_application(s, view.id)
    return {"case": case.code, "agreement": await agreement_json(s, view),
            "application": await application_json(s, app.id) if app else None}


def rooms_of(sv: Services, case_code: str) -> list[Any]:
    return [r for r in sv.rooms.all() if r.case_code == case_code]


async def push_agreement(sv: Services, sio: Any, case_code: str) -> None:
    """`agreement:state` to every admitted participant of the case's live sessions. Call after committing."""
    rooms = rooms_of(sv, case_code)
    if not rooms:
        return
    async with sv.db.session() as s:
        case = await s.scalar(select(Case).where(Case.code == case_code))
        if case is None:
            return
        state = await case_state(s, case)
    for room in rooms:
        for p in room.admitted():
            await sio.emit("agreement:state", state, to=p.sid, namespace=NS)


async def notify_parties(sv: Services, sio: Any, case_code: str, subject: str, kind: str,
                         detail: dict[str, Any]) -> None:
    """Tell the parties (R25: they are notified): a `court:notice` to each connected party or agent of the case,
    and an audit entry saying what was sent and to whom (the list a party page reads back)."""
    notice = {"kind": kind, "case": case_code, **detail, "at": dt.datetime.now(dt.UTC).isoformat()}
    delivered = []
    for room in rooms_of(sv, case_code):
        for p in room.connected():
            if p.role in SIDES:
                await sio.emit("court:notice", notice, to=p.sid, namespace=NS)
                delivered.append(p.pid)
    async with sv.db.session() as s:
        await audit.append(s, actor="system", action=NOTICE, subject=subject,
                           detail={**notice, "delivered_to": delivered})


async def notifications(s: AsyncSession, case_code: str) -> list[dict[str, Any]]:
    entries = await audit.entries_for(s, f"case:{case_code}/")
    return [{k: v for k, v in json.loads(e.detail).items() if k != "delivered_to"}
            for e in entries if e.action == NOTICE]


def sio_of(app: Any) -> Any:
    from signaling.app import SIO  # the app module imports this one's users; resolved at call time

    return app[SIO]


# ---- recordings for the court ------------------------------------------------------------------------------------

async def court_recordings(s: AsyncSession, case_code: str) -> list[Recording]:
    """Finished recordings of the case that go to a court. Caucus recordings are privileged (R9) and stay out."""
    q = select(Recording).where(Recording.case_code == case_code, Recording.privileged.is_(False),
                                Recording.status.in_(("stopped", "truncated")),
                                Recording.keys_destroyed_at.is_(None))
    return list((await s.scalars(q.order_by(Recording.started_at))).all())


async def wrap_for_court(sv: Services, case_code: str, court_id: str, *, actor: str) -> list[str]:
    """Wrap every recording's data key to the court's X25519 key (once per recording and court)."""
    court = sv.courts.get(court_id)
    async with sv.db.session() as s:
        recs = [r.id for r in await court_recordings(s, case_code)]
    done = []
    for rid in recs:
        try:
            await rec_keys.court_wrap_blob(sv.db, rid, court_id)
        except NotFound:
            try:
                await rec_keys.add_court_wrap(sv.db, sv.keys, rid, court_id,
                                              base64.b64decode(court.recording_public_key), actor=actor,
                                              reason=f"case {case_code} sent to {court.name} for judicial confirmation")
            except (NotFound, Expired) as e:
                log.warning("recording %s cannot be wrapped for %s: %s", rid, court_id, e)
                continue
        done.append(rid)
    return done


async def recording_parts(sv: Services, case_code: str, court_id: str, *, actor: str) -> list[RecordingPart]:
    """Each recording as the bundle carries it: signed manifest, encrypted streams, data key wrapped to the court."""
    parts = []
    for rid in await wrap_for_court(sv, case_code, court_id, actor=actor):
        async with sv.db.session() as s:
            rec = await s.get(Recording, rid)
            streams = (await s.scalars(select(RecordingStream.stream_id)
                                       .where(RecordingStream.recording_id == rid)
                                       .order_by(RecordingStream.id))).all()
        manifest = await sv.storage.get_object(rid, "manifest.json")
        if manifest is None and rec is not None and rec.manifest:
            manifest = rec.manifest.encode()
        if manifest is None:
            log.warning("recording %s has no manifest; left out of the bundle", rid)
            continue
        files = {}
        for sid in streams:
            files[f"{sid}.odr"] = b"".join([c async for c in sv.storage.read_stream(rid, sid)])
        parts.append(RecordingPart(manifest=manifest, files=files,
                                   wrapped_key=await rec_keys.court_wrap_blob(sv.db, rid, court_id),
                                   recording_id=rid))
    return parts
