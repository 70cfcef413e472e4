"""Small loaders shared by the agreement services (rows in, plain dicts out)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from mediation.agreements.models import Agreement, AgreementVersion
from mediation.errors import NotFound
from mediation.models import Case, Center, Person, StaffUser


async def case_row(s: AsyncSession, case_id: int) -> Case:
    case = await s.get(Case, case_id)
    if case is None:
        raise NotFound("案件不存在 / no such case", code="no_case")
    return case


async def agreement_row(s: AsyncSession, agreement_id: int, *, lock: bool = False) -> Agreement:
    q = select(Agreement).where(Agreement.id == agreement_id)
    if lock:
        q = q.with_for_update()
    row = (await s.scalars(q)).first()
    if row is None:
        raise NotFound("调解协议不存在 / no such agreement", code="no_agreement")
    return row


async def version_row(s: AsyncSession, agreement_id: int, version: int) -> AgreementVersion:
    row = (await s.scalars(select(AgreementVersion).where(
        AgreementVersion.agreement_id == agreement_id, AgreementVersion.version == version))).first()
    if row is None:
        raise NotFound("协议版本不存在 / no such version", code="no_version")
    return row


async def people(s: AsyncSession, case_id: int) -> list[Person]:
    return list((await s.scalars(select(Person).where(Person.case_id == case_id).order_by(Person.id))).all())


def person_dict(p: Person) -> dict[str, Any]:
    return {
        "person_id": p.id, "side": p.side, "kind": p.kind, "name": p.name, "id_number": p.id_number,
        "phone": p.phone, "address": p.address, "represents": p.represents_id,
    }


async def parties_snapshot(s: AsyncSession, case_id: int) -> list[dict[str, Any]]:
    return [person_dict(p) for p in await people(s, case_id)]


async def center_of(s: AsyncSession, case: Case) -> Center:
    center = await s.get(Center, case.center_id)
    if center is None:
        raise NotFound("调解组织不存在 / no such center", code="no_center")
    return center


async def staff_name(s: AsyncSession, staff_id: int | None) -> str:
    if staff_id is None:
        return ""
    u = await s.get(StaffUser, staff_id)
    return u.display_name if u else ""
