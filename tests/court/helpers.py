"""Steps of the agreement / court tests, all through the real server: parties over Socket.IO with the device key
they joined with, staff over HTTP (and the mediator also inside the session)."""

from __future__ import annotations

import base64
import copy
import datetime as dt
from typing import Any

from sqlalchemy import select

from mediation.models import Case, Person
from signaling.client import SessionClient
from tests.conftest import World

COURT = "court-huangzhong"


async def complete_people(world: World) -> dict[str, int]:
    """The seeded case has names and phones only; an agreement needs ID numbers and addresses (R15, R23) —
    what intake records. Returns side -> person id."""
    async with world.services.db.session() as s:
        case = await s.scalar(select(Case).where(Case.code == world.case_code))
        assert case
        people = (await s.scalars(select(Person).where(Person.case_id == case.id).order_by(Person.id))).all()
        for i, p in enumerate(people):
            p.id_number = f"63012219900101{i:04d}"
            p.address = "青海省西宁市湟中区鲁沙尔镇和平村" + str(i + 1) + "号"
        return {p.side: p.id for p in people}


def filled(content: dict[str, Any], people: dict[str, int], *, vague: bool = False) -> dict[str, Any]:
    """The neighbours template with every blank filled with definite terms (or one vague deadline)."""
    c = copy.deepcopy(content)
    due = (dt.date.today() + dt.timedelta(days=15)).isoformat()
    c["facts"] = "双方系上下楼邻居。2026年1月起，B方卫生间漏水致A方天花板受损，双方多次协商未果。"
    c["responsibility"] = {"A": "A方无过错。", "B": "B方未及时维修管道，应承担全部赔偿责任。"}
    c["terms"] = [
        {"obligor": people["B"], "obligee": people["A"], "kind": "act", "what": "修复卫生间防水层并恢复A方天花板原状",
         "method": "委托有资质的施工单位施工", "place": "青海省西宁市湟中区鲁沙尔镇和平村", "deadline": due},
        {"obligor": people["B"], "obligee": people["A"], "kind": "payment", "what": "赔偿A方财产损失",
         "amount": "3800.00", "currency": "CNY", "method": "银行转账至A方账户",
         "place": "青海省西宁市湟中区", "deadline": "尽快" if vague else due},
    ]
    c["performance"] = {"method": "按上述约定履行", "place": "青海省西宁市湟中区", "deadline": due}
    return c


async def draft_and_finalize(m: SessionClient, people: dict[str, int]) -> dict[str, Any]:
    d = (await m.call("agreement:draft", {"template": "neighbours"}))["agreement"]
    upd = await m.call("agreement:update", {"content": filled(d["content"], people),
                                            "base_version": d["current_version"], "note": "填写协议条款"})
    assert upd["agreement"]["problems"] == []
    return dict((await m.call("agreement:finalize"))["agreement"])


async def party_sign(c: SessionClient, event: str = "agreement") -> dict[str, Any]:
    """Fetch the exact bytes and sign them with the client's device key (the one bound at join)."""
    got = await c.call(f"{event}:payload")
    sig = c.device_key.sign(base64.b64decode(got["payload"]))
    return await c.call(f"{event}:sign", {"signature": sig})


async def sealed(world: World) -> tuple[SessionClient, SessionClient, SessionClient, dict[str, int]]:
    """In session, drafted, finalized, signed by both parties and the mediator: sealed."""
    people = await complete_people(world)
    m, a, b = await world.trio()
    await draft_and_finalize(m, people)
    await party_sign(a)
    await m.call("agreement:sign-mediator")
    out = await party_sign(b)
    assert out["sealed"] is True, out
    return m, a, b, people


async def http_status(c: SessionClient, method: str, path: str, json: Any = None) -> tuple[int, Any]:
    async with c.http.request(method, f"{c.base_url}{path}", json=json, headers={"X-CSRF-Token": c.csrf}) as r:
        if r.content_type == "application/json":
            return r.status, await r.json()
        return r.status, await r.read()
