"""The agreement → application → ruling workflow as ONE explicit state machine (R15-R26, issue 11).

    draft → final → party and mediator signatures in any order → effective → sealed
          → application signatures (and powers of attorney) in any order → submitted → accepted → ruled
          → objection windows → archived

Two halves:
- `evaluate(facts)` is pure: from what the case holds now it names the stage and, per person, the actions open
  to them ("next actions"), each `ready` or waiting for named actions of named people. Pages show exactly these;
  the model test (tests/agreements/test_workflow_model.py) checks that the server accepts what is ready, refuses
  what is not, and that every reachable state either leads on or is closed with a reason.
- `settle(s, agreement_id, notary)` runs after EVERY event (a signature, the seal, a document, a ruling...): it
  completes whatever step has become possible, whichever of its conditions was met last (all parties signed →
  effective; effective and the mediator signed → sealed; sealed and the application fully signed → submitted).

Actors are named like signers: `person:<id>` (a party or agent), `staff:<id>` (the case's mediator; `mediator`
while the case has none), `court:<court id>` (any judge of the court the application went to), `system`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import cases
from mediation.agreements import agreement as agreements
from mediation.agreements import confirmation, package, signing
from mediation.agreements._load import agreement_row, case_row, people
from mediation.agreements.application_state import applicant_agents, powers_of_attorney
from mediation.agreements.models import Agreement, ConfirmationApplication, CourtRuling
from mediation.agreements.notary import Notary
from mediation.agreements.seal import seal_agreement
from mediation.db import utcnow
from mediation.models import MediationSession
from mediation.service_records import DocumentDelivery

log = logging.getLogger(__name__)
OBJECTION_PARTY = dt.timedelta(days=15)  # CPL-I 372: a party, 15 days from receiving the ruling (R26)
OBJECTION_THIRD = dt.timedelta(days=183)  # a third party, 6 months
OPEN_APPLICATION = ("draft", "submitted", "accepted")
OFFLINE = frozenset({"sign_on_paper", "raise_objection"})  # done outside this system (on paper, at the court)


@dataclass(frozen=True)
class Someone:
    id: int
    kind: str  # party | agent
    represents: int | None = None

    @property
    def actor(self) -> str:
        return f"person:{self.id}"


@dataclass(frozen=True)
class Facts:
    """What the case holds now (read by `facts`; tests build them by hand)."""

    mediator: str  # staff:<id> | mediator
    people: tuple[Someone, ...]
    now: dt.datetime
    termination_reason: str | None = None
    personal_status: bool = False
    session_open: bool = False  # a mediation session the parties can join (where they sign)
    agreement: str | None = None  # draft | final | effective | sealed | refused | void; None: none yet
    problems: int = 0  # of the draft (R15)
    unsigned: tuple[int, ...] = ()  # parties the agreement lacks a signature for (their own or an agent's)
    mediator_signed: bool = False
    effective_at: dt.datetime | None = None
    eligible: bool = True  # R24
    application: str | None = None  # draft | submitted | accepted | not_accepted | confirmed | rejected
    court: str | None = None
    app_unsigned: tuple[int, ...] = ()
    missing_poa: tuple[int, ...] = ()  # agents who signed the application without a power of attorney
    poa_open: tuple[int, ...] = ()  # applicant agents with no power of attorney attached yet (one may be added)
    extended: bool = False
    ruled_at: dt.datetime | None = None
    served: tuple[tuple[int, dt.datetime], ...] = ()  # (person id, when the ruling first reached their device)


@dataclass(frozen=True)
class Wait:
    actor: str
    action: str


@dataclass(frozen=True)
class NextAction:
    actor: str
    role: str  # party | agent | mediator | judge | system
    action: str
    ready: bool = True
    waits_for: tuple[Wait, ...] = ()
    until: dt.datetime | None = None

    @property
    def offline(self) -> bool:
        return self.action in OFFLINE

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"actor": self.actor, "role": self.role, "action": self.action, "ready": self.ready,
                               "waits_for": [{"actor": w.actor, "action": w.action} for w in self.waits_for]}
        if self.until is not None:
            out["until"] = self.until.isoformat()
        if self.offline:
            out["offline"] = True
        return out


@dataclass(frozen=True)
class State:
    stage: str
    next_actions: tuple[NextAction, ...] = ()
    closed: bool = False
    reason: str | None = None  # why it is closed (R28 termination reasons, or the workflow's own end)
    until: dt.datetime | None = None  # the deadline of this stage, if any

    def leads_on(self) -> bool:
        """Someone can act now, in this system, to move the case on (a pending retry by the system is not enough)."""
        return any(a.ready and not a.offline and a.role != "system" for a in self.next_actions)

    def ready(self, actor: str, action: str) -> bool:
        return any(a.ready and a.actor == actor and a.action == action for a in self.next_actions)

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "closed": self.closed, "reason": self.reason,
                "until": self.until.isoformat() if self.until else None,
                "next_actions": [a.to_dict() for a in self.next_actions]}


def _for(f: Facts, party_ids: tuple[int, ...], action: str, waits: tuple[Wait, ...] = ()) -> list[NextAction]:
    """`action` for each listed party and for each agent representing one of them."""
    out = []
    for p in f.people:
        principal = p.id if p.kind == "party" else p.represents
        if principal in party_ids:
            out.append(NextAction(p.actor, p.kind, action, not waits, waits))
    return out


def _in_session(f: Facts) -> tuple[Wait, ...]:
    """Parties act in a session: with none open they wait for the mediator to schedule one."""
    return () if f.session_open else (Wait(f.mediator, "schedule_session"),)


def _seal(f: Facts) -> tuple[NextAction, ...]:
    """Effective and signed by the mediator but not sealed: the seal failed and is retried on the next event."""
    return (NextAction("system", "system", "seal"),) if f.agreement == "effective" and f.mediator_signed else ()


def _deadline(f: Facts) -> dt.datetime | None:
    return f.effective_at + dt.timedelta(days=30) if f.effective_at else None  # CPL 205, R21


def _may_apply(f: Facts) -> State | None:
    """None if an application can be started now; otherwise why the workflow ends here."""
    end = _deadline(f)
    if not f.eligible:
        return State("sealed", (), True, "not_eligible_for_confirmation")
    if end is not None and f.now > end:
        return State("sealed", (), True, "confirmation_window_passed")
    return None


def evaluate(f: Facts) -> State:
    """The stage and everyone's next actions. Parties act in a session: when one of them waits for a session,
    scheduling one is the mediator's next action."""
    st = _evaluate(f)
    if any(w.action == "schedule_session" for a in st.next_actions for w in a.waits_for):
        return State(st.stage, (*st.next_actions, NextAction(f.mediator, "mediator", "schedule_session")),
                     st.closed, st.reason, st.until)
    return st


def _evaluate(f: Facts) -> State:
    med = f.mediator
    all_parties = tuple(p.id for p in f.people if p.kind == "party")
    if f.agreement is None:
        if f.termination_reason:
            return State("terminated", (), True, f.termination_reason)
        return State("no_agreement", (NextAction(med, "mediator", "draft_agreement"),))
    if f.agreement in ("refused", "void"):
        reason = f.termination_reason or ("party_refused_to_sign" if f.agreement == "refused" else "agreement_void")
        return State(f.agreement, (NextAction(med, "mediator", "draft_agreement"),), True, reason)
    if f.agreement == "draft":
        fix = () if f.problems == 0 else (Wait(med, "edit_draft"),)
        return State("draft", (NextAction(med, "mediator", "edit_draft"),
                               NextAction(med, "mediator", "finalize", not fix, fix),
                               *_for(f, all_parties, "refuse", _in_session(f))))
    if f.personal_status:  # ESL 3: printed and signed on paper at the center
        return State("paper_only", (NextAction(med, "mediator", "sign_on_paper"),), True,
                     "personal_status_paper_only")
    sign_med = () if f.mediator_signed else (NextAction(med, "mediator", "sign_as_mediator"),)
    if f.agreement == "final":
        session = _in_session(f)
        waits = tuple(Wait(f"person:{pid}", "sign_agreement") for pid in f.unsigned)
        return State("signing", (*sign_med, *_for(f, f.unsigned, "sign_agreement", session),
                                 *_for(f, f.unsigned, "refuse", session),
                                 NextAction(med, "mediator", "start_application", False, waits)))
    end = _deadline(f)
    if f.application is None or f.application == "not_accepted":
        stop = _may_apply(f)
        stage = "effective" if f.agreement == "effective" else (
            "not_accepted" if f.application == "not_accepted" else "sealed")
        if stop is not None:  # the organization's signature and seal are still worth completing
            why = stop.reason if f.application is None else "application_not_accepted"
            return State(stage, (*sign_med, *_seal(f)), True, why)
        return State(stage, (*sign_med, *_seal(f), NextAction(med, "mediator", "start_application", until=end)),
                     until=end)
    court = f"court:{f.court}"
    if f.application == "draft":
        if end is not None and f.now > end:
            return State("application", (), True, "confirmation_window_passed")
        session = _in_session(f)
        acts = [*sign_med, *_for(f, f.app_unsigned, "sign_application", session)]
        acts += [NextAction(med, "mediator", "add_power_of_attorney") for _ in f.poa_open[:1]]
        acts += _seal(f)
        waits = tuple(Wait(a.actor, a.action) for a in acts)
        acts.append(NextAction(court, "judge", "accept", False, waits))
        return State("application", tuple(acts), until=end)
    if f.application == "submitted":
        return State("submitted", (NextAction(court, "judge", "accept"), NextAction(court, "judge", "decline")))
    if f.application == "accepted":
        extra = () if f.extended else (NextAction(court, "judge", "extend"),)
        return State("accepted", (NextAction(court, "judge", "rule"), NextAction(court, "judge", "questioning"),
                                  *extra))
    if f.application in ("confirmed", "rejected"):  # ruled: objection windows (CPL-I 372), then archived
        ruled = f.ruled_at or f.now
        reason = f"ruling_{f.application}"
        served = dict(f.served)
        acts = []  # a party's 15 days run from the day the ruling reached it (R20 copies log the delivery)
        for p in f.people:
            until = served[p.id] + OBJECTION_PARTY if p.id in served else None
            if p.kind == "party" and (until is None or f.now <= until):
                acts.append(NextAction(p.actor, "party", "raise_objection", until=until))
        end = max([ruled + OBJECTION_THIRD, *(a.until for a in acts if a.until is not None)])
        if f.now <= ruled + OBJECTION_THIRD or any(a.until is not None for a in acts):
            return State("objection_window", tuple(acts), True, reason, end)
        return State("archived", (), True, reason)
    return State(f.application, (), True, f"application_{f.application}")


# ---- reading the facts --------------------------------------------------------------------------------------------
async def facts(s: AsyncSession, case_id: int, *, now: dt.datetime | None = None) -> Facts:

    now = now or utcnow()
    case = await case_row(s, case_id)
    who = tuple(Someone(p.id, p.kind, p.represents_id) for p in await people(s, case_id)
                if p.kind in ("party", "agent"))
    open_q = select(MediationSession.id).where(MediationSession.case_id == case_id,
                                               MediationSession.kind == "mediation",
                                               MediationSession.state != "ended")
    base = Facts(mediator=f"staff:{case.mediator_id}" if case.mediator_id else "mediator", people=who, now=now,
                 termination_reason=case.termination_reason, personal_status=await cases.paper_only(s, case),
                 session_open=(await s.scalars(open_q)).first() is not None)
    view = await agreements.agreement_for_case(s, case_id)
    if view is None:
        last = (await s.scalars(select(Agreement.id).where(Agreement.case_id == case_id)
                                .order_by(Agreement.id.desc()))).first()
        view = await agreements.get_agreement(s, last) if last else None
    if view is None:
        return base
    problems = len(await agreements.check_draft(s, view.id)) if view.status == "draft" else 0
    elig = confirmation.eligibility_of(case, view.content)
    f = Facts(**{**base.__dict__, "agreement": view.status, "problems": problems,
                 "unsigned": tuple(view.unsigned_parties), "mediator_signed": view.mediator_signed,
                 "effective_at": view.effective_at, "eligible": elig.eligible})
    app = (await s.scalars(select(ConfirmationApplication).where(ConfirmationApplication.agreement_id == view.id)
                           .order_by(ConfirmationApplication.id.desc()))).first()
    if app is None:
        return f
    av = await confirmation.get_application(s, app.id)
    missing = await package.missing_items(s, app.id)
    poa = tuple(m["person_id"] for m in missing if m["item"] == "power_of_attorney")
    on_file = await powers_of_attorney(s, app.id)
    poa_open = tuple(a for a in applicant_agents(json.loads(app.document)) if a not in on_file)
    ruled = await s.scalar(select(CourtRuling.ruled_at).where(CourtRuling.application_id == app.id))
    served: tuple[tuple[int, dt.datetime], ...] = ()
    if ruled is not None:
        q = (select(DocumentDelivery.person_id, func.min(DocumentDelivery.delivered_at))
             .where(DocumentDelivery.document == "ruling", DocumentDelivery.person_id.in_([p.id for p in who]))
             .group_by(DocumentDelivery.person_id))
        served = tuple((pid, at) for pid, at in (await s.execute(q)).all())
    return Facts(**{**f.__dict__, "application": app.status, "court": app.court_id,
                    "app_unsigned": tuple(av.unsigned_parties), "missing_poa": poa, "poa_open": poa_open, "extended": app.extended,
                    "ruled_at": ruled, "served": served})


async def state_of(s: AsyncSession, case_id: int, *, now: dt.datetime | None = None) -> State:
    return evaluate(await facts(s, case_id, now=now))


# ---- completing whatever became possible -----------------------------------------------------------------------
@dataclass
class Settled:
    effective: bool = False
    sealed: bool = False
    submitted: list[int] = field(default_factory=list)  # application ids submitted now


async def settle(s: AsyncSession, agreement_id: int, *, notary: Notary) -> Settled:
    """Re-evaluate after any event and complete every step whose conditions now all hold (in order)."""

    out = Settled()
    a = await agreement_row(s, agreement_id, lock=True)
    case = await case_row(s, a.case_id)
    view = await agreements.get_agreement(s, a.id)
    if a.status == "final" and not view.unsigned_parties and not await cases.paper_only(s, case):
        await signing._take_effect(s, a, case, notary, utcnow())
        out.effective = True
    if a.status == "effective" and view.mediator_signed:
        try:  # sealing writes nothing before it succeeds; a failure is retried on the next event
            await seal_agreement(s, a.id, notary=notary)
            out.sealed = True
        except Exception:
            log.exception("sealing agreement %s failed; it stays effective, retried on the next event", a.id)
    if a.status in ("effective", "sealed"):
        q = select(ConfirmationApplication.id).where(ConfirmationApplication.agreement_id == a.id,
                                                     ConfirmationApplication.status == "draft")
        for app_id in (await s.scalars(q)).all():
            if await confirmation.try_submit(s, app_id):
                out.submitted.append(app_id)
    return out

