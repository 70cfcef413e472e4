"""The court side (R25, R26): the judge's queue with its clocks, acceptance, questioning, the signed ruling.

Acceptance is decided within 3 days of submission (JC 4); the ruling within 15 days of acceptance, extendable once
by 10 (JC 5). A ruling is canonical JSON signed with the court's Ed25519 key. Every view a judge makes is an
audit entry (`judge_viewed`).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.agreements._load import agreement_row, case_row
from mediation.agreements.confirmation import app_subject, application_row
from mediation.agreements.courts import CourtDirectory
from mediation.agreements.models import ConfirmationApplication, CourtQuestioning, CourtRuling
from mediation.agreements.pdf import DocumentInput, render_document
from mediation.canonical import canonical_json, sha256_hex
from mediation.db import utcnow
from mediation.errors import Conflict, Forbidden, InvalidInput
from mediation.models import Case, StaffUser
from mediation.permissions import StaffRole
from mediation.service_records import RulingDocument

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
    objections: dict[str, Any] = field(default_factory=dict)  # R26 windows, see `objection_windows`


async def judge_account(s: AsyncSession, judge_id: int, court_id: str | None = None) -> StaffUser:
    u = await s.get(StaffUser, judge_id)
    if u is None or u.role != StaffRole.COURT_JUDGE or not u.active or not u.court_id:
        raise Forbidden("仅限法官 / judges only", code="not_a_judge")
    if court_id is not None and u.court_id != court_id:
        raise Forbidden("该申请不是向您所在法院提出的 / this application was sent to another court",
                        code="other_court")
    return u


async def _for_judge(s: AsyncSession, application_id: int, judge_id: int) -> tuple[ConfirmationApplication, str]:
    app = await application_row(s, application_id)
    await judge_account(s, judge_id, app.court_id)
    case = await case_row(s, app.case_id)
    return app, case.code


async def judge_queue(s: AsyncSession, *, judge_id: int, now: dt.datetime | None = None) -> list[QueueItem]:
    """Applications sent to the judge's court that are waiting for acceptance or a ruling, most urgent first."""
    now = now or utcnow()
    judge = await judge_account(s, judge_id)
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


PARTY_OBJECTION = dt.timedelta(days=15)  # a party: within 15 days of receiving the ruling (CPL-I 372, JC 11)
THIRD_PARTY_OBJECTION_MONTHS = 6  # a third party: within 6 months of knowing its rights were harmed (CPL-I 372)


def add_months(t: dt.datetime, months: int) -> dt.datetime:
    """Calendar months; a day past the end of the target month becomes its last day (31 Aug + 6 = 28/29 Feb)."""
    y, m = divmod(t.month - 1 + months, 12)
    year, month = t.year + y, m + 1
    for day in (t.day, 30, 29, 28):
        try:
            return t.replace(year=year, month=month, day=min(t.day, day))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def objection_windows(ruled_at: dt.datetime, now: dt.datetime | None = None) -> dict[str, Any]:
    """R26: objections to a ruling by a party within 15 days, by a third party within 6 months, as the ruling
    states them (the earliest a party's window can close: served the day it was made); each party's own window
    runs from service, which the copies log records per person (R20, `served_windows`)."""
    now = now or utcnow()
    out: dict[str, Any] = {}
    for who, due, rule_ in (("party", ruled_at + PARTY_OBJECTION, "R26: a party objects within 15 days"),
                            ("third_party", add_months(ruled_at, THIRD_PARTY_OBJECTION_MONTHS),
                             "R26: a third party objects within 6 months")):
        out[who] = {"due": due.isoformat(), "open": now <= due, "days_left": max(0, (due - now).days),
                    "rule": rule_}
    return out


def served_windows(objections: dict[str, Any], served_at: dt.datetime | None,
                   now: dt.datetime | None = None) -> dict[str, Any]:
    """One party's objection windows: its 15 days run from when the ruling first reached it (R26, CPL-I 372);
    before that its window has not started (`due` None)."""
    now = now or utcnow()
    due = served_at + PARTY_OBJECTION if served_at else None
    party = {"due": due.isoformat() if due else None, "open": due is None or now <= due,
             "days_left": max(0, (due - now).days) if due else None,
             "served_at": served_at.isoformat() if served_at else None, "rule": "R26: a party objects within 15 days "
             "of receiving the ruling"}
    return {**objections, "party": party}


def require_reasoning(reasoning: str) -> str:
    """Confirming or rejecting states the court's reasoning (R25): empty text is refused."""
    text = (reasoning or "").strip()
    if not text:
        raise InvalidInput("请填写裁定理由 / the ruling needs its reasoning", code="reasoning_required",
                           field="reasoning")
    return text


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
    judge = await judge_account(s, judge_id)
    court = await courts.lookup(s, app.court_id)
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
    return RulingView(row.id, app.id, court.id, outcome, ground, document, sig, row.court_key_fingerprint, now,
                      objection_windows(now, now))


async def ruling_for(s: AsyncSession, application_id: int) -> RulingView | None:
    row = (await s.scalars(select(CourtRuling).where(CourtRuling.application_id == application_id))).first()
    if row is None:
        return None
    return RulingView(row.id, row.application_id, row.court_id, row.outcome, row.ground, json.loads(row.document),
                      row.signature, row.court_key_fingerprint, row.ruled_at, objection_windows(row.ruled_at))


# ---- the ruling as a document (裁定书): a PDF signed with the court's key (R20, R25) -------------------------------

def _cst(iso: str) -> str:
    t = dt.datetime.fromisoformat(iso)
    return t.astimezone(dt.timezone(dt.timedelta(hours=8))).strftime("%Y年%m月%d日 %H:%M")


def ruling_input(view: RulingView, *, verify_url: str, court_fingerprint: str,
                 applicants: list[dict[str, Any]], center_name: str) -> DocumentInput:
    """What the 裁定书 says: who applied, what was asked, the outcome with its ground and the court's reasoning,
    the objection windows, and how to verify it. Built only from the signed ruling and the signed application."""
    d = view.document
    names = "、".join(f"{p['name']}（{p['side']}方）" for p in applicants if p.get("kind") == "party") or "—"
    confirmed = view.outcome == "confirmed"
    decision = ("确认申请人于调解组织主持下达成的人民调解协议（协议编号 "
                f"{d['agreement_id']}-v{d['agreement_version']}）有效。一方当事人拒绝履行或者未全部履行的，"
                "对方当事人可以向人民法院申请强制执行。" if confirmed else
                f"驳回申请人的司法确认申请。理由：{d.get('ground_label') or '—'}。当事人可以通过调解方式变更原调解协议"
                "或者达成新的调解协议，也可以向人民法院提起诉讼。")
    ob = view.objections or objection_windows(view.ruled_at)
    return DocumentInput(
        title=d["court"]["name"], subtitle="民事裁定书",
        meta=[f"案件编号：{d['case']}    申请编号：{d['application_id']}", f"申请人：{names}",
              f"调解组织：{center_name}"],
        sections=[
            ("申请事项", "申请人共同申请确认其在调解组织主持下达成的人民调解协议的效力（《中华人民共和国民事诉讼法》第二百零五条、"
                     "第二百零六条）。"),
            ("本院经审查认为", d.get("reasoning") or "—"),
            ("裁定如下", f"{d['outcome_label']}：{decision}"),
            ("异议期限", "当事人对本裁定有异议的，应当自收到本裁定之日起十五日内提出；"
                     f"案外人认为本裁定损害其民事权益的，可以自知道或者应当知道其民事权益受到侵害之日起六个月内提出异议"
                     f"（自本裁定作出之日计，至 {_cst(ob['third_party']['due'])}）。本案不收取费用。"),
        ],
        closing=[f"审判员　{d.get('judge') or ''}", _cst(d["ruled_at"]), d["court"]["name"]],
        small_print=[
            f"本裁定为电子文书，由{d['court']['name']}以其裁定密钥（Ed25519）签名。",
            f"法院裁定密钥指纹（SHA-256）：{court_fingerprint}",
            f"裁定内容（规范化 JSON）SHA-256：{sha256_hex(ruling_message(d))}",
            f"裁定内容签名（base64）：{view.signature}",
            f"调解协议内容 SHA-256：{d.get('content_sha256') or '—'}；申请书 SHA-256：{d.get('application_sha256') or '—'}",
            "本 PDF 文件本身的签名随文件一同提供（下载响应头 X-Court-Signature），也可在核验地址查询。",
        ],
        verify_url=verify_url, footer=f"{d['case']} · 民事裁定书 · 申请 {d['application_id']}",
        author=d["court"]["name"], subject=f"ruling {view.id} application {d['application_id']}",
    )


async def ruling_document(s: AsyncSession, application_id: int, *, courts: CourtDirectory, verify_url: str,
                          center_name: str, font: tuple[Path, int]) -> RulingDocument | None:
    """The ruling's PDF, rendered once and signed (as bytes) with the court's key; None before a ruling."""
    view = await ruling_for(s, application_id)
    if view is None:
        return None
    row = await s.get(RulingDocument, view.id)
    if row is not None:
        return row
    app = await application_row(s, application_id)
    applicants = json.loads(app.document).get("applicants", [])
    court = await courts.lookup(s, view.court_id)
    doc = ruling_input(view, verify_url=verify_url, court_fingerprint=court.ruling_key_fingerprint,
                       applicants=applicants, center_name=center_name)
    pdf = await asyncio.to_thread(render_document, doc, font)
    key = courts.ruling_key(court.id)
    sig = base64.b64encode(await asyncio.to_thread(key.sign, pdf)).decode()
    row = RulingDocument(ruling_id=view.id, pdf=pdf, sha256=sha256_hex(pdf), signature=sig,
                         court_key_fingerprint=court.ruling_key_fingerprint, rendered_at=utcnow())
    s.add(row)
    await s.flush()
    await audit.append(s, actor=f"court:{court.id}", action="ruling.render", subject=app_subject(view.document["case"],
                       application_id), detail={"ruling_id": view.id, "pdf_sha256": row.sha256})
    return row
