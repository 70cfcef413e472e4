"""Tenancy as data (issue 10 item 1): the courts cases are sent to and the centers with their parent levels, as
rows that the system administrator creates. A center admin manages only its own center's staff
(`mediation.casework.add_user`); judges and system administrators are the system administrator's to create.

Courts: the `courts` table behind `CourtDirectory` (mediation.agreements.courts). A court created here is usable
on this node at once (it is added to the directory after its row commits); another node loads it when a lookup
misses. Centers: `level` is one of CENTER_LEVELS, and a center's parent is a center of a higher level.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mediation import audit
from mediation.access import Actor, Resource, check
from mediation.agreements.courts import Court, CourtDirectory, parse_court
from mediation.db import Database
from mediation.errors import Conflict, InvalidInput, NotFound
from mediation.models import Center, CourtRecord
from mediation.permissions import Action

CENTER_LEVELS = ("province", "city", "county", "township")  # from the top: a parent is above its children
CENTER_CODE = re.compile(r"[A-Z][A-Z0-9]{0,9}(-[A-Z0-9]{1,9}){0,3}")  # "QH-HX": the prefix of case codes (R29)


def court_json(c: Court) -> dict[str, str]:
    return c.to_dict()


def center_json(c: Center) -> dict[str, Any]:
    return {"id": c.id, "code": c.code, "name": c.name, "address": c.address, "level": c.level,
            "parent_id": c.parent_id}


async def first_center(s: Any) -> Center:
    """The first center, made (a development one) if there is none: `onedoor demo` and `onedoor users add` on a
    fresh database, which then has one center; more are made by a provincial admin (`create_center`)."""
    center = await s.scalar(select(Center).order_by(Center.id).limit(1))
    if center is None:
        center = Center(code="QH-HX", name="湟中区社会治理综合服务中心 (demo)", address="西宁市湟中区")
        s.add(center)
        await s.flush()
    return center


async def seed_courts(db: Database, courts: CourtDirectory) -> int:
    """Start-up: the directory file's courts (or the development courts) into the table, then every row into the
    directory. Returns how many courts the file listed."""
    async with db.session() as s:
        return await courts.seed(s)


async def list_courts(db: Database, courts: CourtDirectory) -> list[dict[str, str]]:
    """Every court (id, name, level, region), from the rows: the intake form's referring-court picker."""
    async with db.session() as s:
        await courts.refresh(s)
    return [{"id": c.id, "name": c.name, "level": c.level, "region": c.region}
            for c in sorted(courts.courts.values(), key=lambda c: c.id)]


async def create_court(db: Database, actor: Actor, courts: CourtDirectory, entry: dict[str, Any]) -> dict[str, str]:
    """A court, with its public keys, checked like a directory file's entry (422 `invalid_court`); an id that
    exists is 409 `court_exists` (the primary key decides a race: exactly one of several creations wins)."""
    check(actor, Action.COURT_CREATE, Resource("court"))
    court = parse_court(entry)
    exists = Conflict(f"法院 {court.id} 已存在 / court {court.id} exists", code="court_exists")
    async with db.session() as s:
        if await s.get(CourtRecord, court.id) is not None:
            raise exists
        try:
            async with s.begin_nested():
                s.add(CourtRecord(**court.to_dict()))
                await s.flush()
        except IntegrityError:
            raise exists from None
        await audit.append(s, actor=actor.id, action="court.create", subject=f"court:{court.id}",
                           detail={"name": court.name, "level": court.level, "region": court.region,
                                   "ruling_key": court.ruling_key_fingerprint})
    courts.add(court)  # committed: usable on this node at once
    return court_json(court)


async def create_center(db: Database, actor: Actor, *, code: str, name: str, address: str, level: str,
                        parent_id: int | None) -> dict[str, Any]:
    """A center under a parent of a higher level (or at the top: no parent). Its code prefixes its case codes,
    so it is unique (409 `center_exists`) and short upper-case ASCII."""
    check(actor, Action.CENTER_CREATE, Resource("center"))
    if level not in CENTER_LEVELS:
        raise InvalidInput(f"level is one of {', '.join(CENTER_LEVELS)}", code="bad_center_level",
                           allowed=list(CENTER_LEVELS))
    if not CENTER_CODE.fullmatch(code):
        raise InvalidInput("中心代码如 QH-HX / a center code is upper-case letters and digits, e.g. QH-HX",
                           code="bad_center_code")
    if not name.strip():
        raise InvalidInput("a center has a name", code="bad_center_name")
    exists = Conflict(f"中心代码 {code} 已使用 / center code {code} exists", code="center_exists")
    async with db.session() as s:
        if parent_id is not None:
            parent = await s.get(Center, parent_id)
            if parent is None:
                raise NotFound("no such parent center", code="center_not_found")
            if CENTER_LEVELS.index(parent.level) >= CENTER_LEVELS.index(level):
                raise InvalidInput(f"a {level} center cannot sit under a {parent.level} center",
                                   code="bad_parent_level")
        if await s.scalar(select(Center.id).where(Center.code == code)) is not None:
            raise exists
        center = Center(code=code, name=name, address=address, level=level, parent_id=parent_id)
        try:
            async with s.begin_nested():
                s.add(center)
                await s.flush()
        except IntegrityError:
            raise exists from None
        await audit.append(s, actor=actor.id, action="center.create", subject=f"center:{center.id}",
                           detail={"code": code, "level": level, "parent_id": parent_id})
        return center_json(center)


async def list_centers(db: Database, actor: Actor) -> list[dict[str, Any]]:
    """Every center with its level and parent (the system administrator's view)."""
    check(actor, Action.CENTER_LIST, Resource("center"))
    async with db.session() as s:
        return [center_json(c) for c in (await s.scalars(select(Center).order_by(Center.id))).all()]
