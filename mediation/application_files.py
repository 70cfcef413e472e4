"""The court package's documents (R23) come from the case file (issue 13 item 1).

A power of attorney, a proof of property rights or another document is uploaded ONCE into the case file
(mediation.documents: sniffed, sanitised, encrypted, hashed into the audit log) with its kind as the purpose,
then attached to the application (`attach`, mediation.agreements.package.attach_document). `upload` does both in
one step for the console's `POST /api/cases/{code}/application/documents`. Attaching the last missing item can
submit the application, so both return the domain events the way mediation.workflow does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.access import Actor, check
from mediation.agreements import agreement as agreements
from mediation.agreements import lifecycle, package
from mediation.agreements.models import ConfirmationApplication
from mediation.agreements.notary import Notary
from mediation.db import Database
from mediation.documents import CaseFile
from mediation.errors import Conflict, NotFound
from mediation.models import Case
from mediation.notices import AgreementChanged, ApplicationSubmitted, Event
from mediation.permissions import Action
from mediation.resources import case_by_code, case_resource
from mediation.workflow import application_json, latest_application

Result = tuple[dict[str, Any], list[Event]]


class ApplicationFiles:
    def __init__(self, db: Database, case_file: CaseFile, notary: Callable[[], Notary]) -> None:
        self.db, self.case_file, self._notary = db, case_file, notary

    async def _draft(self, s: AsyncSession, actor: Actor, code: str) -> tuple[Case, ConfirmationApplication]:
        case = await case_by_code(s, code)
        check(actor, Action.APPLICATION_START, await case_resource(s, case))
        view = await agreements.agreement_for_case(s, case.id)
        app = await latest_application(s, view.id) if view else None
        if app is None:
            raise NotFound("尚未发起司法确认申请 / no application has been prepared", code="no_application")
        if app.status != "draft":
            raise Conflict("申请已提交 / the application was already submitted", code="already_submitted")
        return case, app

    async def attach(self, actor: Actor, code: str, document_id: str) -> Result:
        """Attach a case-file document of this case to its application; returns it and the application."""
        async with self.db.session() as s:
            case, app = await self._draft(s, actor, code)
            drafts = set((await s.scalars(select(ConfirmationApplication.id).where(
                ConfirmationApplication.case_id == case.id, ConfirmationApplication.status == "draft"))).all())
            doc = await package.attach_document(s, app.id, document_id=document_id, actor=actor.id)
            view = await agreements.agreement_for_case(s, case.id)
            if view is not None:
                await lifecycle.settle(s, view.id, notary=self._notary())
            events: list[Event] = []
            for app_id in sorted(drafts):
                row = await s.get(ConfirmationApplication, app_id)
                if row is not None and row.status == "submitted":
                    events.append(ApplicationSubmitted(case.code, row.id, row.court_id))
            out = await application_json(s, app.id)
        return {"document": doc, "application": out}, [*events, AgreementChanged(case.code)]

    async def upload(self, actor: Actor, code: str, *, kind: str, filename: str, data: bytes,
                     person_id: int | None) -> Result:
        """Upload into the case file with `kind` as its purpose, then attach it (refused before the upload when
        there is no application in draft)."""
        async with self.db.session() as s:
            _, app = await self._draft(s, actor, code)
            if kind == "power_of_attorney":  # refused before anything is stored
                await package.check_power_of_attorney(s, app, person_id)
        doc = await self.case_file.upload(actor, code, filename=filename, data=data, purpose=kind,
                                          person_id=person_id)
        out, events = await self.attach(actor, code, doc["id"])
        return {**out, "case_file_document": doc}, events
