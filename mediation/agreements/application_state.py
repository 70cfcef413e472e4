"""An application for judicial confirmation as stored: its row, its signatures, its attached documents, and what
it still lacks before it can be submitted (R21-R23). The base the application modules share (confirmation.py
collects signatures and submits, package.py assembles the court package), so neither imports the other."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.agreements._load import agreement_row
from mediation.agreements.models import ApplicationDocument, ApplicationSignature, ConfirmationApplication
from mediation.errors import NotFound


async def application_row(s: AsyncSession, application_id: int) -> ConfirmationApplication:
    app = await s.get(ConfirmationApplication, application_id)
    if app is None:
        raise NotFound("司法确认申请不存在 / no such application", code="no_application")
    return app


async def application_signatures(s: AsyncSession, application_id: int) -> list[ApplicationSignature]:
    q = select(ApplicationSignature).where(ApplicationSignature.application_id == application_id)
    return list((await s.scalars(q.order_by(ApplicationSignature.id))).all())


def uncovered_parties(document: dict[str, Any], sigs: list[ApplicationSignature]) -> list[int]:
    covered = {r.person_id for r in sigs}
    agents = {p["person_id"]: p.get("represents") for p in document["applicants"] if p["kind"] == "agent"}
    covered |= {agents[r.person_id] for r in sigs if r.person_id in agents}
    return [p["person_id"] for p in document["applicants"] if p["kind"] == "party" and p["person_id"] not in covered]


async def application_documents(s: AsyncSession, application_id: int) -> list[ApplicationDocument]:
    q = select(ApplicationDocument).where(ApplicationDocument.application_id == application_id)
    return list((await s.scalars(q.order_by(ApplicationDocument.id))).all())


def applicant_agents(document: dict[str, Any]) -> list[int]:
    return [p["person_id"] for p in document["applicants"] if p["kind"] == "agent"]


async def powers_of_attorney(s: AsyncSession, application_id: int) -> set[int]:
    """The agents a power of attorney is attached for."""
    return {d.person_id for d in await application_documents(s, application_id)
            if d.kind == "power_of_attorney" and d.person_id is not None}


async def missing_items(s: AsyncSession, application_id: int) -> list[dict[str, Any]]:
    """What the application still lacks before it can be submitted, as codes the pages translate:
    `{"item": "party_signature", "person_id"}`, `{"item": "power_of_attorney", "person_id": <the agent>}` (an
    agent signed for a party, R23), `{"item": "sealed_agreement"}`."""
    app = await application_row(s, application_id)
    doc, sigs = json.loads(app.document), await application_signatures(s, app.id)
    missing: list[dict[str, Any]] = [{"item": "party_signature", "person_id": pid}
                                     for pid in uncovered_parties(doc, sigs)]
    poa = await powers_of_attorney(s, app.id)
    missing += [{"item": "power_of_attorney", "person_id": r.person_id} for r in sigs
                if r.role == "agent" and r.person_id not in poa]
    if (await agreement_row(s, app.agreement_id)).sealed_pdf is None:
        missing.append({"item": "sealed_agreement"})
    return missing
