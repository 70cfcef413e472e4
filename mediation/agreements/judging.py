"""The court side (R25, R26): the judge's queue with its clocks, acceptance, questioning, the signed ruling.

Acceptance is decided within 3 days of submission (JC 4); the ruling within 15 days of acceptance, extendable once
by 10 (JC 5). A ruling is canonical JSON signed with the court's Ed25519 key. Every view a judge makes is an
audit entry (`judge_viewed`).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.agreements._load import agreement_row, case_row
from mediation.agreements.confirmation import app_subject, application_row
from mediation.agreements.courts import CourtDirectory
from mediation.agreements.models import ConfirmationApplication, CourtQuestioning, CourtRuling
from mediation.canonical import canonical_json, sha256_hex
from mediation.db import utcnow
from mediation.errors import Conflict, Forbidden, InvalidInput
from mediation.models import StaffUser
from mediation.permissions import StaffRole

log = logging.getLogger(__name__)
RULE_WITHIN = dt.timedelta(days=15)
EXTENSION = dt.timedelta(days=10)
OUTCOMES = {"confirmed": "裁定确认调解协议有效", "rejected": "裁定驳回申请"}
REJECTION_GROUNDS = {  # R25: CPL-I 358, JC 7 (and 355: an inadmissible matter found after acceptance)
    "violates_mandatory_law": "违反法律强制性规定",
    "harms_state_public_or_others": "损害国家利益、社会公共利益、他人合法权益",
    "against_public_order": "违背公序良俗",
    "not_voluntary": "违背自愿原则",
    "unclear_content": "内容不明确",
    "inadmissible": "属于不予受理的情形（民诉法解释第三百五十五条）",
    "other": "其他不能进行司法确认的情形",
}
NOT_ACCEPTED_GROUNDS = {  # CPL-I 355
    "out_of_scope": "不属于人民法院受理范围",
    "no_jurisdiction": "不属于收到申请的人民法院管辖",
    "personal_status": "申请确认婚姻关系、亲子关系、收养关系等身份关系",
    "special_procedure": "涉及适用其他特别程序、公示催告程序、破产程序审理",
    "ownership": "调解协议内容涉及物权、知识产权确权",
}
VIEWABLE = ("application", "package", "agreement", "transcript", "recording", "audit", "bundle")


@dataclass
class QueueItem:
    application_id: int
    case_code: str
    status: str
    submitted_at: dt.datetime | None
    acceptance_due: dt.datetime | None
    accepted_at: dt.datetime | None
    ruling_due: dt.datetime | None
    extended: bool
    due_at: dt.datetime | None  # the clock that runs now
    overdue: bool
    questionings: list[dt.datetime]


@dataclass
class RulingView:
    id: int
    application_id: int
    court_id: str
    outcome: str
    ground: str | None
    document: dict[str, Any]
    signature: str
    court_key_fingerprint: str
    ruled_at: dt.datetime


async def _judge(s: AsyncSession, judge_id: int, court_id: str | None = None) -> StaffUser:
    u = await s.get(StaffUser, judge_id)
    if u is None or u.role != StaffRole.COURT_JUDGE or not u.active or not u.court_id:
        raise Forbidden("仅限法官 / judges only", code="not_a_judge")
    if court_id is not None and u.court_id != court_id:
        raise Forbidden("该申请不是向您所在法院提出的 / this application was sent to another court",
                        code="other_court")
    return u


async def _for_judge(s: AsyncSession, application_id: int, judge_id: int) -> tuple[ConfirmationApplication, str]:
    app = await application_row(s, application_id)
    await _judge(s, judge_id, app.court_id)
    case = await case_row(s, app.case_id)
    return app, case.code


async def judge_queue(s: AsyncSession, *, judge_id: int, now: dt.datetime | None = None) -> list[QueueItem]:
    """Applications sent to the judge's court that are waiting for acceptance or a ruling, most urgent first."""
    now = now or utcnow()
    judge = await _judge(s, judge_id)
    from mediation.models import Case

    q = (select(ConfirmationApplication, Case.code).join(Case, Case.id == ConfirmationApplication.case_id)
         .where(ConfirmationApplication.court_id == judge.court_id,
                ConfirmationApplication.status.in_(("submitted", "accepted"))))
    out = []
    for app, code in (await s.execute(q)).all():
        due = app.acceptance_due if app.status == "submitted" else app.ruling_due
        qs = (await s.scalars(select(CourtQuestioning.scheduled_at)
                              .where(CourtQuestioning.application_id == app.id))).all()
        out.append(QueueItem(app.id, code, app.status, app.submitted_at, app.acceptance_due, app.accepted_at,
                             app.ruling_due, app.extended, due, bool(due and now > due), list(qs)))
    await audit.append(s, actor=f"staff:{judge_id}", action="judge_viewed", subject=f"court:{judge.court_id}/queue",
                       detail={"what": "queue", "count": len(out)})
    return sorted(out, key=lambda x: x.due_at or now)


async def record_view(s: AsyncSession, application_id: int, *, judge_id: int, what: str, reason: str = "") -> None:
    """Log that the judge opened part of the case (R10: every view is an audit entry). Call before serving it."""
    if what not in VIEWABLE:
        raise InvalidInput(f"unknown item '{what}'", code="invalid_item", choices=list(VIEWABLE))
    app, code = await _for_judge(s, application_id, judge_id)
    await audit.append(s, actor=f"staff:{judge_id}", action="judge_viewed", subject=app_subject(code, app.id),
                       detail={"what": what}, reason=reason or None)


async def accept(s: AsyncSession, application_id: int, *, judge_id: int, now: dt.datetime | None = None) -> None:
    now = now or utcnow()
    app, code = await _for_judge(s, application_id, judge_id)
    if app.status != "submitted":
        raise Conflict(f"申请状态为 {app.status}，不能受理 / cannot accept now", code="not_submitted")
    app.status, app.accepted_at, app.ruling_due, app.judge_id = "accepted", now, now + RULE_WITHIN, judge_id
    await s.flush()
    await audit.append(s, actor=f"staff:{judge_id}", action="court.accept", subject=app_subject(code, app.id),
                       detail={"ruling_due": app.ruling_due.isoformat(),
                               "late": bool(app.acceptance_due and now > app.acceptance_due)})


async def decline(s: AsyncSession, application_id: int, *, judge_id: int, ground: str, note: str = "") -> None:
    """不予受理 (CPL-I 355) with a ground from the fixed list."""
    if ground not in NOT_ACCEPTED_GROUNDS:
        raise InvalidInput("不予受理须选择法定事由 / choose a ground from the list", code="invalid_ground",
                           choices=list(NOT_ACCEPTED_GROUNDS))
    app, code = await _for_judge(s, application_id, judge_id)
    if app.status != "submitted":
        raise Conflict("cannot decline now", code="not_submitted")
    app.status, app.decision_note, app.judge_id = "not_accepted", f"{ground}: {note}", judge_id
    await s.flush()
    await audit.append(s, actor=f"staff:{judge_id}", action="court.decline", subject=app_subject(code, app.id),
                       detail={"ground": ground}, reason=note or None)


async def extend(s: AsyncSession, application_id: int, *, judge_id: int, reason: str) -> dt.datetime:
    """Extend the ruling clock once by 10 days (JC 5: approved by the court president; note it in `reason`)."""
    app, code = await _for_judge(s, application_id, judge_id)
    if app.status != "accepted" or app.ruling_due is None:
        raise Conflict("only an accepted application can be extended", code="not_accepted")
    if app.extended:
        raise Conflict("审查期限只能延长一次 / the ruling period was already extended", code="already_extended")
    if not reason.strip():
        raise InvalidInput("请说明延长理由 / give the reason", code="missing_field", field="reason")
    app.ruling_due, app.extended = app.ruling_due + EXTENSION, True
    await s.flush()
    await audit.append(s, actor=f"staff:{judge_id}", action="court.extend", subject=app_subject(code, app.id),
                       reason=reason, detail={"ruling_due": app.ruling_due.isoformat()})
    return app.ruling_due


async def schedule_questioning(
    s: AsyncSession, application_id: int, *, judge_id: int, at: dt.datetime, session_id: int | None = None,
    note: str = "",
) -> int:
    """Record a questioning of both parties (CPL-I 356); the remote session itself is hosted by the server."""
    app, code = await _for_judge(s, application_id, judge_id)
    if app.status != "accepted":
        raise Conflict("只能对已受理的申请询问当事人 / accept the application first", code="not_accepted")
    row = CourtQuestioning(application_id=app.id, judge_id=judge_id, scheduled_at=at, session_id=session_id, note=note)
    s.add(row)
    await s.flush()
    await audit.append(s, actor=f"staff:{judge_id}", action="court.questioning", subject=app_subject(code, app.id),
                       detail={"at": at.isoformat(), "session_id": session_id})
    return row.id


def ruling_message(document: dict[str, Any]) -> bytes:
    return canonical_json(document)


async def rule(
    s: AsyncSession, application_id: int, *, judge_id: int, outcome: str, courts: CourtDirectory,
    ground: str | None = None, reasoning: str = "", now: dt.datetime | None = None,
) -> RulingView:
    """裁定有效 (confirmed) or 驳回 (rejected, with a ground from `REJECTION_GROUNDS`), signed by the court key."""
    now = now or utcnow()
    if outcome not in OUTCOMES:
        raise InvalidInput("outcome must be confirmed or rejected", code="invalid_outcome", choices=list(OUTCOMES))
    if outcome == "rejected" and ground not in REJECTION_GROUNDS:
        raise InvalidInput("驳回须选择法定理由 / a rejection needs a ground from the list", code="invalid_ground",
                           choices=list(REJECTION_GROUNDS))
    if outcome == "confirmed":
        ground = None
    app, code = await _for_judge(s, application_id, judge_id)
    if app.status != "accepted":
        raise Conflict("须先受理 / accept the application before ruling", code="not_accepted")
    judge = await _judge(s, judge_id)
    court = courts.get(app.court_id)
    a = await agreement_row(s, app.agreement_id)
    document = {
        "type": "onedoor-court-ruling", "court": {"id": court.id, "name": court.name}, "case": code,
        "application_id": app.id, "application_sha256": app.document_sha256, "agreement_id": a.id,
        "agreement_version": a.final_version, "content_sha256": a.content_sha256,
        "sealed_pdf_sha256": sha256_hex(a.sealed_pdf) if a.sealed_pdf else None,
        "outcome": outcome, "outcome_label": OUTCOMES[outcome], "ground": ground,
        "ground_label": REJECTION_GROUNDS.get(ground or ""), "reasoning": reasoning, "judge": judge.display_name,
        "ruled_at": now.isoformat(timespec="microseconds"),
    }
    key = courts.ruling_key(court.id)
    sig = base64.b64encode(key.sign(ruling_message(document))).decode()
    row = CourtRuling(application_id=app.id, court_id=court.id, outcome=outcome, ground=ground,
                      document=ruling_message(document).decode(), signature=sig,
                      court_key_fingerprint=court.ruling_key_fingerprint, judge_id=judge_id, ruled_at=now)
    s.add(row)
    app.status = outcome
    await s.flush()
    await audit.append(s, actor=f"staff:{judge_id}", action="court.rule", subject=app_subject(code, app.id),
                       detail={"outcome": outcome, "ground": ground, "ruling_sha256": sha256_hex(ruling_message(document)),
                               "late": bool(app.ruling_due and now > app.ruling_due)})
    return RulingView(row.id, app.id, court.id, outcome, ground, document, sig, row.court_key_fingerprint, now)


async def ruling_for(s: AsyncSession, application_id: int) -> RulingView | None:
    row = (await s.scalars(select(CourtRuling).where(CourtRuling.application_id == application_id))).first()
    if row is None:
        return None
    import json

    return RulingView(row.id, row.application_id, row.court_id, row.outcome, row.ground, json.loads(row.document),
                      row.signature, row.court_key_fingerprint, row.ruled_at)
