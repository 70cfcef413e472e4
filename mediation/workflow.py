"""The agreement → application → ruling workflow as ONE facade (R15-R26), whichever transport calls it.

The console's HTTP routes and the session's Socket.IO events used to implement draft/update/finalize/sign each
on their own and drifted (mediation-only rules on one side only, the mediator id from different fields). Both
now call these methods with an `Actor`: a staff member over HTTP (object check: the case's center), or a session
participant (the case is the session's; drafting and the mediator's signature only in a mediation session).
Each method returns its result and the domain events (mediation.notices) for the transport to deliver.

The order people act in is free: every change ends with `lifecycle.settle`, which completes whatever step has
become possible (the seal, the application's submission), and every state carries the lifecycle's `next_actions`
(mediation/agreements/lifecycle.py) so the pages show each person exactly what they can do now.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation import audit
from mediation.access import Actor, check
from mediation.agreements import agreement as agreements
from mediation.agreements import confirmation, judging, lifecycle, package, signing, templates
from mediation.agreements.courts import CourtDirectory
from mediation.agreements.models import Agreement, ConfirmationApplication
from mediation.agreements.notary import Notary
from mediation.casefile_records import Transcript
from mediation.db import Database
from mediation.documents import case_documents, court_documents
from mediation.errors import Forbidden, NotFound
from mediation.models import Case, Invite, MediationSession
from mediation.notices import AgreementChanged, ApplicationSubmitted, Event, notifications
from mediation.permissions import Action
from mediation.recording_records import court_bound
from mediation.resources import case_by_code, case_resource

Result = tuple[dict[str, Any], list[Event]]


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


async def court_receives(s: AsyncSession, case_id: int) -> dict[str, Any]:
    """What the court will receive with the application, told to the parties before they sign it (R9, R23): the
    package's parts, the case file's court-bound documents by name, the joint recordings and closed transcripts;
    caucus material (recordings, transcript entries, documents shown only inside a caucus) never goes."""
    case = await s.get(Case, case_id)
    assert case is not None
    docs = court_documents(await case_documents(s, case_id))
    sessions = select(MediationSession.id).where(MediationSession.case_id == case_id)
    closed = (await s.scalars(select(Transcript.session_id).where(Transcript.session_id.in_(sessions)))).all()
    return {"items": ["application", "sealed_agreement", "identity", "mediation_proof"],
            "documents": [{"filename": d.filename, "purpose": d.purpose} for d in docs],
            "recordings": len(await court_bound(s, case.code)), "transcripts": len(closed), "withheld": ["caucus"]}


async def application_json(s: AsyncSession, application_id: int) -> dict[str, Any]:
    view = await confirmation.get_application(s, application_id)
    out = jsonable(view)
    out["missing"] = await package.missing_items(s, application_id)
    # told before the parties sign it (a draft); later the package is what was sent
    out["court_receives"] = await court_receives(s, view.case_id) if view.status == "draft" else None
    ruling = await judging.ruling_for(s, application_id)
    out["ruling"] = jsonable(ruling) if ruling else None
    return dict(out)


async def workflow_json(s: AsyncSession, case: Case) -> dict[str, Any]:
    """The lifecycle's stage and each person's next actions (docs/protocol.md, "The workflow state machine")."""
    st = (await lifecycle.state_of(s, case.id)).to_dict()
    return {"workflow": {k: v for k, v in st.items() if k != "next_actions"}, "next_actions": st["next_actions"]}


async def case_state(s: AsyncSession, case: Case) -> dict[str, Any]:
    """What every admitted participant sees: the agreement (with its problems while a draft), the application,
    the workflow stage and everyone's next actions."""
    view = await latest_agreement(s, case.id)
    flow = await workflow_json(s, case)
    if view is None:
        return {"case": case.code, "agreement": None, "application": None, **flow}
    app = await latest_application(s, view.id)
    return {"case": case.code, "agreement": await agreement_json(s, view),
            "application": await application_json(s, app.id) if app else None, **flow}


async def _drafts(s: AsyncSession, case_id: int) -> set[int]:
    """The case's applications still collecting signatures or documents."""
    q = select(ConfirmationApplication.id).where(ConfirmationApplication.case_id == case_id,
                                                 ConfirmationApplication.status == "draft")
    return set((await s.scalars(q)).all())


class Workflow:
    def __init__(self, db: Database, notary: Callable[[], Notary], courts: Callable[[], CourtDirectory]) -> None:
        self.db = db
        self._notary = notary
        self._courts = courts

    # ---- the case, as this actor may reach it ------------------------------------------------------------------
    async def _case(self, s: AsyncSession, actor: Actor, code: str | None, action: Action, *,
                    mediation_only: bool = False) -> Case:
        if actor.session_id is not None:  # a session participant: the case is the session's
            sess = await s.get(MediationSession, actor.session_id)
            case = await s.get(Case, sess.case_id) if sess else None
            if sess is None or case is None:
                raise NotFound("no such session", code="session_not_found")
            if mediation_only and sess.kind != "mediation":
                raise Forbidden("协议只能在调解会话中起草和签署 / agreements are drafted in a mediation session",
                                code="not_mediation_session")
            return case
        assert code is not None
        case = await case_by_code(s, code)
        check(actor, action, await case_resource(s, case))
        return case

    async def _settle(self, s: AsyncSession, case: Case, drafts: set[int]) -> list[Event]:
        """After any change: complete whatever step became possible (lifecycle.settle), whichever condition was
        met last, and announce the applications this change submitted (of `drafts`, read before the change)."""
        view = await agreements.agreement_for_case(s, case.id)
        if view is not None:
            await lifecycle.settle(s, view.id, notary=self._notary())
        events: list[Event] = []
        for app_id in sorted(drafts):
            app = await s.get(ConfirmationApplication, app_id)
            if app is not None and app.status == "submitted":
                events.append(ApplicationSubmitted(case.code, app.id, app.court_id))
        return [*events, AgreementChanged(case.code)]

    async def _person_id(self, s: AsyncSession, actor: Actor) -> tuple[int, int]:
        """The person (and invite) this participant's invite is for (parties and agents always join by invite)."""
        inv = await s.get(Invite, int(actor.id[4:])) if actor.id.startswith("inv-") else None
        if inv is None or inv.person_id is None:
            raise Forbidden("您不是本案当事人或代理人 / not a party or agent of this case", code="not_a_party")
        return int(inv.person_id), inv.id

    # ---- reading ---------------------------------------------------------------------------------------------
    async def state(self, code: str) -> dict[str, Any] | None:
        """The live `agreement:state` of a case (no actor: pushed to those already admitted)."""
        async with self.db.session() as s:
            case = await s.scalar(select(Case).where(Case.code == code))
            return await case_state(s, case) if case else None

    async def read_in_session(self, actor: Actor) -> dict[str, Any]:
        """The agreement, the application and the notices sent to the parties (the read is logged)."""
        async with self.db.session() as s:
            case = await self._case(s, actor, None, Action.AGREEMENT_READ)
            await audit.append(s, actor=actor.id, action="agreement.view", subject=f"case:{case.code}",
                               detail={"session": actor.session_id})
            return {**await case_state(s, case), "notifications": await notifications(s, case.code)}

    async def read_console(self, actor: Actor, code: str) -> dict[str, Any]:
        """The console's view: problems, signatures, integrity, eligibility, deadline, courts (R22), the workflow
        stage and everyone's next actions. Logged."""
        async with self.db.session() as s:
            case = await self._case(s, actor, code, Action.AGREEMENT_VIEW)
            view = await latest_agreement(s, case.id)
            out: dict[str, Any] = {"case": case.code, "templates": templates.template_names(), "agreement": None,
                                   "application": None, "notifications": await notifications(s, case.code),
                                   **await workflow_json(s, case)}
            await audit.append(s, actor=actor.id, action="agreement.view", subject=f"case:{case.code}")
            if view is None:
                return out
            out["agreement"] = await agreement_json(s, view)
            if view.final_version is not None and view.status not in ("refused", "void"):
                out["integrity"] = await signing.verify_signatures(s, view.id)
            if view.status in ("effective", "sealed"):
                out["eligibility"] = jsonable(await confirmation.check_eligibility(s, view.id))
                out["deadline"] = jsonable(await confirmation.application_deadline(s, view.id))
                out["courts"] = jsonable(await confirmation.suggest_court(s, view.id, self._courts()))
            app = await latest_application(s, view.id)
            if app is not None:
                out["application"] = await application_json(s, app.id)
            return out

    async def versions(self, actor: Actor, code: str) -> list[Any]:
        async with self.db.session() as s:
            case = await self._case(s, actor, code, Action.AGREEMENT_VIEW)
            rows = await agreements.list_versions(s, await live_agreement_id(s, case.id))
            await audit.append(s, actor=actor.id, action="agreement.versions", subject=f"case:{case.code}")
            return list(jsonable(rows))

    async def pdf(self, actor: Actor, code: str, *, sealed: bool, reason: str) -> tuple[str, bytes]:
        async with self.db.session() as s:
            case = await self._case(s, actor, code, Action.AGREEMENT_VIEW)
            view = await latest_agreement(s, case.id)
            if view is None:
                await live_agreement_id(s, case.id)  # raises no_agreement
            assert view is not None
            data = await agreements.agreement_pdf(s, view.id, viewer=actor.id, sealed=sealed, reason=reason)
        return f"{case.code}-{'sealed' if sealed else 'unsigned'}.pdf", data

    async def reminders(self, actor: Actor, within_days: int) -> list[Any]:
        """Effective agreements of the actor's center whose 30-day window ends soon or has ended (R21)."""
        async with self.db.session() as s:
            due = await confirmation.reminders_due(s, within_days=within_days)
            ours = set((await s.scalars(select(Case.id).where(Case.center_id == actor.center_id))).all())
            await audit.append(s, actor=actor.id, action="agreement.reminders", subject=f"center:{actor.center_id}")
        return list(jsonable([r for r in due if r.case_id in ours]))

    # ---- drafting (the mediator) ------------------------------------------------------------------------------
    async def draft(self, actor: Actor, code: str | None, template: str) -> Result:
        async with self.db.session() as s:
            case = await self._case(s, actor, code, _edit(actor), mediation_only=True)
            view = await agreements.create_draft(s, case.id, template=template, author=actor.id,
                                                 mediator_id=actor.staff_id)
            out = await agreement_json(s, view)
        return {"agreement": out}, [AgreementChanged(case.code)]

    async def update(self, actor: Actor, code: str | None, content: dict[str, Any], base_version: int,
                     note: str) -> Result:
        async with self.db.session() as s:
            case = await self._case(s, actor, code, _edit(actor), mediation_only=True)
            view = await agreements.update_draft(s, await live_agreement_id(s, case.id), content, author=actor.id,
                                                 note=note, base_version=base_version)
            out = await agreement_json(s, view)
        return {"agreement": out}, [AgreementChanged(case.code)]

    async def finalize(self, actor: Actor, code: str | None) -> Result:
        async with self.db.session() as s:
            case = await self._case(s, actor, code, _edit(actor), mediation_only=True)
            view = await agreements.finalize(s, await live_agreement_id(s, case.id), author=actor.id,
                                             notary=self._notary())
            out = await agreement_json(s, view)
        return {"agreement": out}, [AgreementChanged(case.code)]

    # ---- signing ---------------------------------------------------------------------------------------------
    async def signing_payload(self, actor: Actor) -> dict[str, Any]:
        """The exact bytes a party signs (base64) with its bound device key."""
        async with self.db.session() as s:
            case = await self._case(s, actor, None, Action.AGREEMENT_SIGN_PARTY)
            a_id = await live_agreement_id(s, case.id)
            person_id, _ = await self._person_id(s, actor)
            data = await signing.signing_payload(s, a_id, person_id=person_id)
            view = await agreements.get_agreement(s, a_id)
        return {"agreement_id": a_id, "version": view.final_version, "pdf_sha256": view.pdf_sha256,
                "content_sha256": view.content_sha256, "payload": base64.b64encode(data).decode()}

    async def sign_party(self, actor: Actor, signature: str) -> Result:
        async with self.db.session() as s:
            case = await self._case(s, actor, None, Action.AGREEMENT_SIGN_PARTY)
            person_id, invite_id = await self._person_id(s, actor)
            drafts = await _drafts(s, case.id)
            out = await signing.sign_as_party(s, await live_agreement_id(s, case.id), person_id=person_id,
                                              invite_id=invite_id, signature_b64=signature, notary=self._notary())
            events = await self._settle(s, case, drafts)
            view = await agreements.get_agreement(s, out.agreement.id)
        return ({"effective": view.status in ("effective", "sealed"), "sealed": view.status == "sealed",
                 "status": view.status, "key_fingerprint": out.signature.key_fingerprint}, events)

    async def sign_mediator(self, actor: Actor, code: str | None) -> Result:
        """The mediator may sign before, between or after the parties; the last of them completes the seal, and
        an application the parties already signed is submitted then (ApplicationSubmitted)."""
        if actor.staff_id is None:
            raise Forbidden("only the case's mediator signs here", code="not_the_mediator")
        async with self.db.session() as s:
            case = await self._case(s, actor, code, Action.AGREEMENT_SIGN_MEDIATOR, mediation_only=True)
            drafts = await _drafts(s, case.id)
            res = await signing.sign_as_mediator(s, await live_agreement_id(s, case.id), staff_id=actor.staff_id,
                                                 notary=self._notary())
            events = await self._settle(s, case, drafts)
            view = await agreements.get_agreement(s, res.agreement.id)
            out = await agreement_json(s, view)
        return ({"agreement": out, "effective": view.status in ("effective", "sealed"),
                 "sealed": view.status == "sealed", "status": view.status}, events)

    async def refuse(self, actor: Actor, note: str) -> Result:
        """A party refuses to sign: the agreement is refused and the mediation ends (R16, R28)."""
        async with self.db.session() as s:
            case = await self._case(s, actor, None, Action.AGREEMENT_SIGN_PARTY)
            person_id, _ = await self._person_id(s, actor)
            view = await signing.refuse_to_sign(s, await live_agreement_id(s, case.id), person_id=person_id,
                                                note=note, actor=actor.id)
            reason = case.termination_reason
        return {"status": view.status, "termination_reason": reason}, [AgreementChanged(case.code)]

    # ---- the application for judicial confirmation --------------------------------------------------------------
    async def start_application(self, actor: Actor, code: str, court_id: str) -> Result:
        async with self.db.session() as s:
            case = await self._case(s, actor, code, Action.APPLICATION_START)
            a_id = await live_agreement_id(s, case.id)
            view = await confirmation.start_application(s, a_id, court_id=court_id, courts=self._courts(),
                                                        actor=actor.id)
            events = await self._settle(s, case, {view.id})
            out = await application_json(s, view.id)
            deadline = jsonable(await confirmation.application_deadline(s, a_id))
            courts = jsonable(await confirmation.suggest_court(s, a_id, self._courts()))
        return {"application": out, "deadline": deadline, "courts": courts}, events

    async def _application(self, s: AsyncSession, case: Case) -> ConfirmationApplication:
        view = await agreements.agreement_for_case(s, case.id)
        app = await latest_application(s, view.id) if view else None
        if app is None:
            raise NotFound("尚未发起司法确认申请 / no application has been prepared", code="no_application")
        return app

    async def application_payload(self, actor: Actor) -> dict[str, Any]:
        """The application document and the exact bytes this party signs for it (base64)."""
        async with self.db.session() as s:
            case = await self._case(s, actor, None, Action.APPLICATION_SIGN)
            app = await self._application(s, case)
            person_id, _ = await self._person_id(s, actor)
            data = await confirmation.application_payload(s, app.id, person_id=person_id)
            view = await confirmation.get_application(s, app.id)
        return {"application_id": app.id, "status": view.status, "document": view.document,
                "deadline_at": view.deadline_at.isoformat(), "court": view.document["court"],
                "payload": base64.b64encode(data).decode()}

    async def sign_application(self, actor: Actor, signature: str) -> Result:
        """The last of the party signatures, powers of attorney and the seal submits the application."""
        async with self.db.session() as s:
            case = await self._case(s, actor, None, Action.APPLICATION_SIGN)
            app = await self._application(s, case)
            person_id, invite_id = await self._person_id(s, actor)
            drafts = await _drafts(s, case.id)
            await confirmation.sign_application(s, app.id, person_id=person_id, invite_id=invite_id,
                                                signature_b64=signature)
            events = await self._settle(s, case, drafts)
            view = await confirmation.get_application(s, app.id)
        return {"application_id": app.id, "status": view.status}, events


def _edit(actor: Actor) -> Action:
    return Action.AGREEMENT_DRAFT if actor.session_id is not None else Action.AGREEMENT_EDIT
