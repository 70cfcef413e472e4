"""Cases: one code from intake to archive (R29), referral channels (R30), stages, clocks (R27, R30), termination (R28)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit, counters
from mediation.case_records import CaseMatter
from mediation.db import Database, utcnow
from mediation.errors import Conflict, InvalidInput, NotFound
from mediation.models import Case, Center, Person, StageChange


class Stage(StrEnum):
    INTAKE = "intake"  # 受理
    TRIAGE = "triage"  # 分流
    HANDLING = "handling"  # 处置
    FEEDBACK = "feedback"  # 反馈
    ARCHIVED = "archived"  # 归档


STAGE_LABELS = {Stage.INTAKE: "受理", Stage.TRIAGE: "分流", Stage.HANDLING: "处置", Stage.FEEDBACK: "反馈",
                Stage.ARCHIVED: "归档"}
# Forward one step; handling may go back to triage (transfer), feedback back to handling (reopen).
TRANSITIONS: dict[Stage, frozenset[Stage]] = {
    Stage.INTAKE: frozenset({Stage.TRIAGE}),
    Stage.TRIAGE: frozenset({Stage.HANDLING}),
    Stage.HANDLING: frozenset({Stage.FEEDBACK, Stage.TRIAGE}),
    Stage.FEEDBACK: frozenset({Stage.ARCHIVED, Stage.HANDLING}),
    Stage.ARCHIVED: frozenset(),
}


class Channel(StrEnum):
    WALK_IN = "walk_in"
    ONLINE = "online"
    COURT = "court"  # 诉调
    POLICE = "police"  # 警调
    PETITION = "petition"  # 访调


class Termination(StrEnum):
    """The fixed list of ways a mediation ends (R28; OMR 21, 25)."""

    AGREEMENT = "agreement_reached"
    REFUSED_TO_SIGN = "party_refused_to_sign"
    WITHDREW = "party_withdrew"
    NO_AGREEMENT = "no_agreement"
    ABSENT = "party_absent"
    TO_LITIGATION = "transferred_to_litigation"
    OUT_OF_SCOPE = "out_of_scope"
    TIMEOUT = "time_limit_expired"
    OTHER = "other"


CATEGORIES = ("neighbours", "family", "wages", "traffic", "property_management", "contract", "land", "other")


class PersonalMatter(StrEnum):
    """Personal matters recorded at intake, kept apart because the law treats them apart: status matters
    (marriage, parent-child, adoption) cannot be judicially confirmed (CPL-I 355, R24); inheritance can. Both
    are signed on paper, not electronically (ESL 3)."""

    NONE = "none"
    STATUS = "status"  # 婚姻、亲子、收养等身份关系 -> Case.personal_status
    INHERITANCE = "inheritance"  # 继承


_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def normalize_id_number(raw: str) -> str:
    """A resident identity card number (GB 11643-1999): 17 digits, a birth date, and the ISO 7064 MOD 11-2 check
    character. Empty stays empty (filled in later); anything else invalid raises InvalidInput `bad_id_number`."""
    v = raw.strip().upper()
    if not v:
        return ""
    ok = len(v) == 18 and v[:17].isascii() and v[:17].isdigit() and v[17] in "0123456789X"
    if ok:
        try:
            dt.date(int(v[6:10]), int(v[10:12]), int(v[12:14]))
        except ValueError:
            ok = False
    if ok:
        ok = "10X98765432"[sum(int(c) * w for c, w in zip(v[:17], _ID_WEIGHTS, strict=True)) % 11] == v[17]
    if not ok:
        raise InvalidInput("身份证号码无效（校验位不符） / not a valid resident ID number (GB 11643 checksum)",
                           code="bad_id_number")
    return v


def normalize_phone(raw: str) -> str:
    v = raw.strip().replace(" ", "").replace("-", "")
    if v and not (v.lstrip("+").isascii() and v.lstrip("+").isdigit() and 5 <= len(v) <= 20):
        raise InvalidInput("电话号码格式不正确 / not a phone number", code="bad_phone")
    return v


@dataclass(frozen=True)
class PersonIn:
    side: str
    name: str
    kind: str = "party"
    id_number: str = ""
    phone: str = ""
    address: str = ""
    represents: int | None = None  # index into the same list, for agents


async def next_case_code(s: AsyncSession, center: Center, now: dt.datetime) -> str:
    """一案一码 (R29): the center's next number this year. One atomic counter (mediation.counters), started from
    the codes already issued, so two cases opened at once never get the same code."""
    prefix = f"{center.code}-{now.year}-"

    async def issued() -> int:
        return int(await s.scalar(select(func.count()).select_from(Case).where(Case.code.startswith(prefix))) or 0)

    return f"{prefix}{await counters.next_value(s, f'case:{prefix}', issued):06d}"


async def create_case(
    s: AsyncSession, *, center: Center, title: str, category: str, channel: str, people: list[PersonIn],
    actor: str, created_by: int | None = None, summary: str = "", referring_court_id: str | None = None,
    personal_status: bool = False,
) -> Case:
    """Intake. ID numbers are checked (GB 11643); `personal_status` marks a status matter (CPL-I 355); the
    inheritance marker is kept by `set_personal_matter`. The referring court is checked by the caller against the
    court directory (mediation.casework)."""
    if category not in CATEGORIES:
        raise InvalidInput(f"unknown dispute category {category!r}", code="bad_category", allowed=list(CATEGORIES))
    try:
        ch = Channel(channel)
    except ValueError:
        raise InvalidInput(f"unknown referral channel {channel!r}", code="bad_channel") from None
    if not title.strip():
        raise InvalidInput("a case needs a title", code="missing_title")
    sides = {p.side for p in people if p.kind == "party"}
    if sides != {"A", "B"}:
        raise InvalidInput("a case needs at least one party on side A and one on side B", code="missing_side")
    for p in people:
        if p.side not in ("A", "B") or p.kind not in ("party", "agent") or not p.name.strip():
            raise InvalidInput("each person needs side A/B, kind party/agent and a name", code="bad_person")
        normalize_id_number(p.id_number)
        normalize_phone(p.phone)
        if p.kind == "agent" and (p.represents is None or not 0 <= p.represents < len(people)
                                  or people[p.represents].kind != "party" or people[p.represents].side != p.side):
            raise InvalidInput("an agent must represent a party on the same side", code="bad_agent")
    now = utcnow()
    case = Case(
        center_id=center.id, code=await next_case_code(s, center, now), title=title.strip(), category=category,
        channel=ch.value, stage=Stage.INTAKE.value, summary=summary, created_by=created_by, created_at=now,
        referring_court_id=referring_court_id, personal_status=personal_status,
    )
    s.add(case)
    await s.flush()
    rows = [Person(case_id=case.id, side=p.side, kind=p.kind, name=p.name.strip(),
                   id_number=normalize_id_number(p.id_number), phone=normalize_phone(p.phone),
                   address=p.address.strip()) for p in people]
    s.add_all(rows)
    await s.flush()
    for p, row in zip(people, rows, strict=True):
        if p.represents is not None:
            row.represents_id = rows[p.represents].id
    s.add(StageChange(case_id=case.id, from_stage=None, to_stage=Stage.INTAKE.value, by=actor, at=now))
    await audit.append(s, actor=actor, action="case.create", subject=f"case:{case.code}",
                       detail={"channel": ch.value, "category": category, "people": len(rows)})
    await s.refresh(case, ["people"])
    return case


PERSON_FIELDS = ("name", "id_number", "phone", "address")


def _mask(field: str, v: str) -> str:
    """What the audit log keeps of a personal value: enough to tell changes apart, not the value."""
    if field == "id_number" and len(v) > 8:
        return v[:4] + "*" * (len(v) - 8) + v[-4:]
    if field == "phone" and len(v) > 4:
        return "*" * (len(v) - 4) + v[-4:]
    return v if field == "name" else ("…" if v else "")


async def correct_person(s: AsyncSession, case: Case, person_id: int, changes: dict[str, str], *, actor: str,
                         reason: str) -> Person:
    """Staff correct a person's name, ID number (GB 11643 checksum), phone or address. Each change is an audit
    entry (old and new values masked). The agreement reads people from here (its parties snapshot), so what is
    corrected is what will be signed; an agreement already final is not changed (a new draft is needed)."""
    person = await s.get(Person, person_id)
    if person is None or person.case_id != case.id:
        raise NotFound("no such person on this case", code="person_not_found")
    if case.stage == Stage.ARCHIVED.value:
        raise Conflict("the case is archived", code="case_archived")
    clean: dict[str, str] = {}
    for k, v in changes.items():
        if k not in PERSON_FIELDS:
            raise InvalidInput(f"unknown field {k!r}", code="bad_field", allowed=list(PERSON_FIELDS))
        v = v.strip()
        if k == "id_number":
            v = normalize_id_number(v)
        elif k == "phone":
            v = normalize_phone(v)
        elif k == "name" and not v:
            raise InvalidInput("a person needs a name", code="bad_person")
        if getattr(person, k) != v:
            clean[k] = v
    if not clean:
        return person
    detail = {k: {"from": _mask(k, getattr(person, k)), "to": _mask(k, v)} for k, v in clean.items()}
    for k, v in clean.items():
        setattr(person, k, v)
    await s.flush()
    await audit.append(s, actor=actor, action="person.correct", subject=f"case:{case.code}/person:{person.id}",
                       detail={"person_id": person.id, "changes": detail}, reason=reason or None)
    return person


def person_to_dict(p: Person) -> dict[str, Any]:
    """Staff view of one person (personal data: only behind a login of the case's center)."""
    return {"id": p.id, "side": p.side, "kind": p.kind, "name": p.name, "represents_id": p.represents_id,
            "id_number": p.id_number, "phone": p.phone, "address": p.address}


async def set_personal_matter(s: AsyncSession, case: Case, matter: PersonalMatter, *, actor: str) -> None:
    """Record the personal matter (status matters also set Case.personal_status: not confirmable, paper only)."""
    row = await s.get(CaseMatter, case.id)
    if matter is PersonalMatter.NONE and row is None:
        return
    if row is None:
        row = CaseMatter(case_id=case.id, personal_matter=matter.value, set_by=actor, set_at=utcnow())
        s.add(row)
    row.personal_matter, row.set_by, row.set_at = matter.value, actor, utcnow()
    case.personal_status = matter is PersonalMatter.STATUS
    await s.flush()
    await audit.append(s, actor=actor, action="case.personal_matter", subject=f"case:{case.code}",
                       detail={"personal_matter": matter.value})


async def personal_matter(s: AsyncSession, case: Case) -> str:
    row = await s.get(CaseMatter, case.id)
    if row is not None:
        return row.personal_matter
    return PersonalMatter.STATUS.value if case.personal_status else PersonalMatter.NONE.value


async def paper_only(s: AsyncSession, case: Case) -> bool:
    """ESL art. 3: documents on marriage, adoption and inheritance are not signed electronically. Status matters
    and inheritance are both printed and signed on paper at the center (inheritance stays confirmable, R24)."""
    return await personal_matter(s, case) in (PersonalMatter.STATUS.value, PersonalMatter.INHERITANCE.value)


async def get_case(s: AsyncSession, code: str) -> Case:
    case = await s.scalar(select(Case).where(Case.code == code))
    if case is None:
        raise NotFound(f"no case {code}", code="case_not_found")
    return case


async def move_stage(s: AsyncSession, case: Case, to: str, *, actor: str, note: str = "") -> StageChange:
    try:
        target = Stage(to)
    except ValueError:
        raise InvalidInput(f"unknown stage {to!r}", code="bad_stage") from None
    current = Stage(case.stage)
    if target not in TRANSITIONS[current]:
        raise Conflict(f"a case in {STAGE_LABELS[current]} cannot move to {STAGE_LABELS[target]}",
                       code="bad_transition", allowed=[x.value for x in TRANSITIONS[current]])
    if target is Stage.ARCHIVED and not case.termination_reason:
        raise Conflict("record how the mediation ended (R28) before archiving", code="termination_required")
    now = utcnow()
    change = StageChange(case_id=case.id, from_stage=current.value, to_stage=target.value, by=actor, at=now,
                         note=note)
    s.add(change)
    case.stage = target.value
    if current is Stage.INTAKE and case.accepted_at is None:
        case.accepted_at = now
    if target is Stage.ARCHIVED:
        case.closed_at = now
    await audit.append(s, actor=actor, action="case.stage", subject=f"case:{case.code}",
                       detail={"from": current.value, "to": target.value}, reason=note or None)
    return change


async def terminate(s: AsyncSession, case: Case, reason: str, *, actor: str, note: str = "") -> None:
    try:
        r = Termination(reason)
    except ValueError:
        raise InvalidInput(f"unknown termination reason {reason!r}", code="bad_reason",
                           allowed=[t.value for t in Termination]) from None
    if r is not Termination.AGREEMENT and not note.strip():
        raise InvalidInput("a failed mediation records the situation and why it failed (R28)", code="note_required")
    case.termination_reason, case.termination_note = r.value, note
    await audit.append(s, actor=actor, action="case.terminate", subject=f"case:{case.code}",
                       detail={"reason": r.value}, reason=note or None)


# ---- clocks (R27, R30) ------------------------------------------------------------------------------------------

def add_working_days(start: dt.datetime, days: int) -> dt.datetime:
    """Monday-Friday working days; public holidays are not modelled (a center may extend this)."""
    t = start
    while days > 0:
        t += dt.timedelta(days=1)
        if t.weekday() < 5:
            days -= 1
    return t


@dataclass(frozen=True)
class Clock:
    name: str
    rule: str
    due: dt.datetime
    done_at: dt.datetime | None

    def overdue(self, now: dt.datetime) -> bool:
        return self.done_at is None and now > self.due

    def to_dict(self, now: dt.datetime) -> dict[str, Any]:
        return {"name": self.name, "rule": self.rule, "due": self.due.isoformat(),
                "done_at": self.done_at.isoformat() if self.done_at else None, "overdue": self.overdue(now)}


def clocks(case: Case) -> list[Clock]:
    out = [Clock("acceptance", "R27: accept within 3 working days", add_working_days(case.created_at, 3),
                 case.accepted_at)]
    if case.accepted_at is not None:
        out.append(Clock("mediation", "R27: mediate within 30 days of acceptance",
                         case.accepted_at + dt.timedelta(days=30), case.closed_at))
    if case.channel == Channel.PETITION.value:
        out.append(Clock("petition_notice", "R30: petition notice within 15 days",
                         case.created_at + dt.timedelta(days=15), case.accepted_at))
        out.append(Clock("petition_conclusion", "R30: petition concluded within 60 days",
                         case.created_at + dt.timedelta(days=60), case.closed_at))
    return out


async def overdue_cases(s: AsyncSession, center_id: int, now: dt.datetime | None = None) -> list[tuple[Case, list[Clock]]]:
    now = now or utcnow()
    q = select(Case).where(Case.center_id == center_id, Case.stage != Stage.ARCHIVED.value).order_by(Case.id)
    out = []
    for case in (await s.scalars(q)).all():
        late = [c for c in clocks(case) if c.overdue(now)]
        if late:
            out.append((case, late))
    return out


def case_to_dict(case: Case, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    return {
        "code": case.code, "title": case.title, "category": case.category, "channel": case.channel,
        "stage": case.stage, "stage_label": STAGE_LABELS[Stage(case.stage)], "summary": case.summary,
        "created_at": case.created_at.isoformat(), "termination_reason": case.termination_reason,
        "flagged_violence": case.flagged_violence, "personal_status": case.personal_status,
        "referring_court_id": case.referring_court_id,
        "people": [{"id": p.id, "side": p.side, "kind": p.kind, "name": p.name, "represents_id": p.represents_id}
                   for p in case.people],
        "clocks": [c.to_dict(now) for c in clocks(case)],
    }


async def fill_demo_identities(db: Database, case_code: str) -> None:
    """Development only (`onedoor simulate`): synthetic, clearly fake ID numbers and an address for the demo
    case's people, which an agreement needs (R15, R23)."""
    async with db.session() as s:
        case = await get_case(s, case_code)
        for i, p in enumerate((await s.scalars(select(Person).where(Person.case_id == case.id))).all()):
            body = f"63012219900101{i:03d}"
            check = "10X98765432"[sum(int(c) * w for c, w in zip(body, _ID_WEIGHTS, strict=True)) % 11]
            p.id_number = p.id_number or body + check
            p.address = p.address or "青海省西宁市湟中区鲁沙尔镇"
