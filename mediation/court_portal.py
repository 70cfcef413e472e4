"""The court portal's use cases (R25, R26): a judge's queue, one application with what the court may see, the
decisions, the ruling and the evidence bundle. A judge reaches only applications sent to their own court
(mediation.access, scope COURT); privileged caucus material never reaches a court (R9). Every view is logged.
Decisions return a Notice for the parties (mediation.notices) that the transport delivers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit, sessions
from mediation import documents as case_documents
from mediation import transcript as e_transcript
from mediation.access import Actor, Resource, check
from mediation.agreements import agreement as agreements
from mediation.agreements import confirmation, judging, signing
from mediation.agreements.bundle import Bundle, DocumentPart, RecordingPart, build_bundle
from mediation.agreements.courts import CourtDirectory
from mediation.agreements.models import ConfirmationApplication, CourtQuestioning
from mediation.agreements.notary import Notary
from mediation.db import Database, utcnow
from mediation.errors import Forbidden
from mediation.models import Case, ChatMessage, MediationSession
from mediation.notices import Notice
from mediation.permissions import Action
from mediation.recording_records import court_bound
from mediation.workflow import application_json, jsonable

APP = "/api/court/applications/{id}"


async def _application(s: AsyncSession, actor: Actor, app_id: int, action: Action
                       ) -> tuple[ConfirmationApplication, Case]:
    app = await confirmation.application_row(s, app_id)
    case = await s.get(Case, app.case_id)
    assert case is not None
    check(actor, action, Resource("application", courts=frozenset({app.court_id})))
    return app, case


def _notice(case: Case, app_id: int, kind: str, detail: dict[str, Any]) -> Notice:
    return Notice(case.code, confirmation.app_subject(case.code, app_id), kind, {"application_id": app_id, **detail})


async def _transcript(s: AsyncSession, case_id: int) -> list[dict[str, Any]]:
    """Chat of the case's sessions; caucus messages are privileged (R9) and left out."""
    q = (select(ChatMessage).join(MediationSession, MediationSession.id == ChatMessage.session_id)
         .where(MediationSession.case_id == case_id, ChatMessage.caucus.is_(None)).order_by(ChatMessage.id))
    return [{"session": m.session_id, "from": m.sender, "name": m.sender_name, "text": m.text,
             "at": m.at.isoformat()} for m in (await s.scalars(q)).all()]


async def _questionings(s: AsyncSession, app_id: int) -> list[dict[str, Any]]:
    """The questionings scheduled for this application, oldest first, each with its session's state: the portal
    shows "join the questioning" from this after a reload (the invite links themselves are shown only once)."""
    q = (select(CourtQuestioning, MediationSession)
         .outerjoin(MediationSession, MediationSession.id == CourtQuestioning.session_id)
         .where(CourtQuestioning.application_id == app_id).order_by(CourtQuestioning.id))
    return [{"id": qn.id, "scheduled_at": qn.scheduled_at.isoformat(), "note": qn.note,
             "session": {"id": sess.id, "kind": sess.kind, "state": sess.state} if sess else None}
            for qn, sess in (await s.execute(q)).all()]


class CourtPortal:
    def __init__(self, db: Database, notary: Callable[[], Notary], courts: Callable[[], CourtDirectory]) -> None:
        self.db, self._notary, self._courts = db, notary, courts

    async def queue(self, actor: Actor) -> list[Any]:
        """The judge's queue, each row with what a judge recognizes a case by: its title, category and the parties
        of each side (names only)."""
        async with self.db.session() as s:
            items = list(jsonable(await judging.judge_queue(s, judge_id=actor.staff_id or 0)))
            codes = {item["case_code"] for item in items}
            cases = {c.code: c for c in (await s.scalars(select(Case).where(Case.code.in_(codes)))).all()}
            for item in items:
                case = cases.get(item["case_code"])
                if case is None:
                    continue
                item["title"], item["category"] = case.title, case.category
                item["parties"] = [{"side": p.side, "name": p.name} for p in case.people if p.kind == "party"]
            return items

    async def detail(self, actor: Actor, app_id: int) -> dict[str, Any]:
        """The agreement with its signatures and integrity check, the transcript, the recordings, the audit
        trail and the clocks. Each part served is logged as a judge's view."""
        async with self.db.session() as s:
            _, case = await _application(s, actor, app_id, Action.COURT_VIEW)
            for what in ("application", "agreement", "transcript", "recording", "audit"):
                await judging.record_view(s, app_id, judge_id=actor.staff_id or 0, what=what)
            application = await application_json(s, app_id)
            view = await agreements.get_agreement(s, application["agreement_id"])
            recs = await court_bound(s, case.code)
            trail = await audit.entries_for(s, f"case:{case.code}")
            base = APP.replace("{id}", str(app_id))
            return {
                "application": application,
                "case": {"code": case.code, "title": case.title, "category": case.category,
                         "channel": case.channel},
                "agreement": jsonable(view), "integrity": await signing.verify_signatures(s, view.id),
                "transcript": await _transcript(s, case.id),
                # 电子笔录 (R11): closed transcripts with each party's signed confirmation or disputed passages
                "transcripts": await e_transcript.court_view(s, case.id),
                "documents": [case_documents.public(d) for d in case_documents.court_documents(
                    await case_documents.case_documents(s, case.id))],
                "recordings": [{"id": r.id, "session": r.session_id, "status": r.status,
                                "duration_ms": r.duration_ms, "started_at": r.started_at.isoformat()} for r in recs],
                "audit": [e.to_dict() for e in trail[-500:]],
                "questionings": await _questionings(s, app_id),
                "links": {"pdf": f"{base}/agreement.pdf", "bundle": f"{base}/bundle"},
            }

    async def agreement_pdf(self, actor: Actor, app_id: int) -> bytes:
        """The sealed agreement (logged as a judge's view and as a read of the agreement)."""
        async with self.db.session() as s:
            app, _ = await _application(s, actor, app_id, Action.COURT_VIEW)
            await judging.record_view(s, app_id, judge_id=actor.staff_id or 0, what="agreement")
            return await agreements.agreement_pdf(s, app.agreement_id, viewer=actor.id, sealed=True,
                                                  reason=f"court review of application {app_id}")

    async def accept(self, actor: Actor, app_id: int) -> tuple[dict[str, Any], Notice]:
        """受理 (within 3 days of submission); starts the 15-day ruling clock."""
        async with self.db.session() as s:
            _, case = await _application(s, actor, app_id, Action.COURT_DECIDE)
            await judging.accept(s, app_id, judge_id=actor.staff_id or 0)
            out = await application_json(s, app_id)
        return out, _notice(case, app_id, "application_accepted", {"ruling_due": out["ruling_due"]})

    async def decline(self, actor: Actor, app_id: int, ground: str, note: str) -> tuple[dict[str, Any], Notice]:
        """不予受理 with a ground from the fixed list (CPL-I 355)."""
        async with self.db.session() as s:
            _, case = await _application(s, actor, app_id, Action.COURT_DECIDE)
            await judging.decline(s, app_id, judge_id=actor.staff_id or 0, ground=ground, note=note)
            out = await application_json(s, app_id)
        return out, _notice(case, app_id, "application_not_accepted",
                            {"ground": ground, "ground_label": judging.NOT_ACCEPTED_GROUNDS[ground]})

    async def extend(self, actor: Actor, app_id: int, reason: str) -> tuple[dict[str, Any], Notice]:
        """Extend the ruling period once by 10 days (JC 5)."""
        async with self.db.session() as s:
            _, case = await _application(s, actor, app_id, Action.COURT_DECIDE)
            due = await judging.extend(s, app_id, judge_id=actor.staff_id or 0, reason=reason)
            out = await application_json(s, app_id)
        return out, _notice(case, app_id, "ruling_period_extended", {"ruling_due": due.isoformat()})

    async def questioning(self, actor: Actor, app_id: int, at: dt.datetime | None, note: str
                          ) -> tuple[int, MediationSession, list[sessions.IssuedInvite], Notice]:
        """Schedule a remote questioning of both parties (CPL-I 356): a session hosted by the judge, with one
        invite link per person of the case (shown only now)."""
        at = at or utcnow()
        judge_id = actor.staff_id or 0
        async with self.db.session() as s:
            _, case = await _application(s, actor, app_id, Action.COURT_DECIDE)
            await judging.record_view(s, app_id, judge_id=judge_id, what="application")
            sess, issued = await sessions.schedule(s, case, host_id=judge_id, at=at, actor=actor.id,
                                                   kind="questioning")
            qid = await judging.schedule_questioning(s, app_id, judge_id=judge_id, at=at, session_id=sess.id,
                                                     note=note)
        return qid, sess, list(issued), _notice(case, app_id, "questioning_scheduled",
                                                {"scheduled_at": at.isoformat(), "session": sess.id})

    async def rule(self, actor: Actor, app_id: int, outcome: str, ground: str | None, reasoning: str
                   ) -> tuple[dict[str, Any], Any, Notice]:
        """裁定有效 (confirmed) or 驳回 (rejected, with a ground from the fixed list), signed with the court's key."""
        async with self.db.session() as s:
            _, case = await _application(s, actor, app_id, Action.COURT_RULE)
            ruling = await judging.rule(s, app_id, judge_id=actor.staff_id or 0, outcome=outcome,
                                        courts=self._courts(), ground=ground, reasoning=reasoning)
            out = await application_json(s, app_id)
        return out, jsonable(ruling), _notice(case, app_id, "ruling", {
            "outcome": ruling.outcome, "outcome_label": judging.OUTCOMES[ruling.outcome], "ground": ruling.ground})

    async def bundle_target(self, actor: Actor, app_id: int) -> tuple[str, str]:
        """(case code, court id) of an application this judge may fetch the bundle of; a refusal is audited."""
        async with self.db.session() as s:
            app = await confirmation.application_row(s, app_id)
            case = await s.get(Case, app.case_id)
            assert case is not None
            court_id, code = app.court_id, case.code
        if actor.court_id != court_id:
            async with self.db.session() as s:
                await audit.append(s, actor=actor.id, action="bundle.fetch_refused",
                                   subject=confirmation.app_subject(code, app_id),
                                   detail={"court_id": court_id, "judge_court": actor.court_id})
            raise Forbidden("该申请不是向您所在法院提出的 / this application was sent to another court",
                            code="other_court")
        return code, court_id

    async def bundle(self, actor: Actor, app_id: int, parts: list[RecordingPart], reason: str,
                     documents: list[DocumentPart] | None = None) -> Bundle:
        """The evidence bundle (docs/bundle.md); the fetch is audited and inside the bundle's own audit extract."""
        async with self.db.session() as s:
            return await build_bundle(s, app_id, judge_id=actor.staff_id or 0, notary=self._notary(),
                                      courts=self._courts(), recordings=parts, reason=reason, documents=documents)
