"""R15: drafts from templates, versions, validation of missing fields and vague terms, freezing."""

from __future__ import annotations

import copy
import datetime as dt

import pytest

from mediation.agreements import agreement, content, templates
from mediation.errors import Conflict, InvalidInput, NotFound

from .conftest import World
from .helpers import filled_content, final_agreement


@pytest.mark.parametrize("key", sorted(templates.TEMPLATES))
async def test_every_template_makes_a_draft_that_names_its_blanks(world: World, key: str) -> None:
    async with world.db.session() as s:
        view = await agreement.create_draft(s, world.case_id, template=key, author="staff:1")
        problems = await agreement.check_draft(s, view.id)
    assert view.status == "draft" and view.current_version == 1
    assert [p["name"] for p in view.content["parties"]] == ["张三", "西宁某建筑劳务有限公司", "李律师"]
    assert view.content["terms"][0]["obligor"] in world.people.values()
    codes = {p["code"] for p in problems}
    assert "placeholder" in codes and "missing_deadline" in codes


def test_templates_word_the_sides_as_jia_and_yi() -> None:
    """One wording for the sides (甲方/乙方) everywhere people read them; "A方"/"B方" never."""
    text = repr(templates.TEMPLATES)
    assert "甲方" in text and "乙方" in text
    assert "A方" not in text and "B方" not in text


async def test_unknown_template_is_refused(world: World) -> None:
    async with world.db.session() as s:
        with pytest.raises(NotFound) as e:
            await agreement.create_draft(s, world.case_id, template="nope", author="staff:1")
    assert e.value.code == "no_template"


async def test_each_save_is_a_new_version_and_final_is_frozen(world: World) -> None:
    a = await final_agreement(world)
    assert a.status == "final" and a.final_version == 2 and a.pdf_sha256
    async with world.db.session() as s:
        versions = await agreement.list_versions(s, a.id)
        assert [v.version for v in versions] == [1, 2]
        assert versions[1].content["terms"][0]["amount"] == "18600.00"
        with pytest.raises(Conflict) as e:
            await agreement.update_draft(s, a.id, a.content, author="staff:1")
    assert e.value.code == "agreement_frozen"


async def test_stale_base_version_is_a_conflict(world: World) -> None:
    async with world.db.session() as s:
        d = await agreement.create_draft(s, world.case_id, template="wages", author="staff:1")
        await agreement.update_draft(s, d.id, filled_content(d, world), author="staff:1", base_version=1)
        with pytest.raises(Conflict) as e:
            await agreement.update_draft(s, d.id, filled_content(d, world), author="staff:1", base_version=1)
    assert e.value.code == "stale_version" and e.value.detail["current_version"] == 2


def _valid(world_people: dict[str, int]) -> dict:
    due = (dt.date.today() + dt.timedelta(days=10)).isoformat()
    return {
        "parties": [
            {"person_id": world_people["A"], "side": "A", "kind": "party", "name": "甲", "id_number": "1",
             "phone": "1", "address": "x"},
            {"person_id": world_people["B"], "side": "B", "kind": "party", "name": "乙", "id_number": "2",
             "phone": "2", "address": "y"},
        ],
        "facts": "事实。", "disputed_matters": ["争议"], "responsibility": {"A": "无责任", "B": "全部责任"},
        "terms": [{"obligor": world_people["B"], "obligee": world_people["A"], "kind": "payment", "what": "赔偿",
                   "amount": "100", "currency": "CNY", "method": "转账", "place": "西宁", "deadline": due}],
        "performance": {"method": "转账", "place": "西宁", "deadline": due},
    }


CASES = [
    (lambda c: c["terms"][0].pop("amount"), "terms[0].amount", "missing_amount"),
    (lambda c: c["terms"][0].update(amount="-5"), "terms[0].amount", "invalid_amount"),
    (lambda c: c["terms"][0].update(amount="1.001"), "terms[0].amount", "invalid_amount"),
    (lambda c: c["terms"][0].update(deadline=""), "terms[0].deadline", "missing_deadline"),
    (lambda c: c["terms"][0].update(deadline="尽快"), "terms[0].deadline", "vague_term"),
    (lambda c: c["terms"][0].update(deadline="2020-01-01"), "terms[0].deadline", "deadline_past"),
    (lambda c: c["terms"][0].update(obligor=None), "terms[0].obligor", "missing_obligor"),
    (lambda c: c["terms"][0].update(obligor=99999), "terms[0].obligor", "unknown_party"),
    (lambda c: c["terms"][0].update(obligee=c["terms"][0]["obligor"]), "terms[0].obligee", "same_party"),
    (lambda c: c["terms"][0].update(what="尽快支付适当的补偿"), "terms[0].what", "vague_term"),
    (lambda c: c["terms"][0].update(method="视情况而定"), "terms[0].method", "vague_term"),
    (lambda c: c["responsibility"].update(B="酌情承担"), "responsibility.B", "vague_term"),
    (lambda c: c.update(facts=""), "facts", "missing_field"),
    (lambda c: c.update(disputed_matters=[]), "disputed_matters", "missing_field"),
    (lambda c: c.update(terms=[]), "terms", "missing_field"),
    (lambda c: c["performance"].pop("place"), "performance.place", "missing_field"),
    (lambda c: c["parties"][0].update(address=""), "parties[0].address", "missing_field"),
    (lambda c: c["parties"].pop(1), "parties", "missing_field"),
    (lambda c: c.update(other="其他事项另行协商"), "other", "vague_term"),
]


@pytest.mark.parametrize(("mutate", "field", "code"), CASES)
def test_validation_names_the_field(mutate, field: str, code: str) -> None:  # type: ignore[no-untyped-def]
    people = {"A": 1, "B": 2}
    good = _valid(people)
    content.validate(good, today=dt.date.today())
    bad = copy.deepcopy(good)
    mutate(bad)
    with pytest.raises(InvalidInput) as e:
        content.validate(bad, today=dt.date.today())
    assert e.value.code == code
    assert e.value.detail["field"] == field
    assert field in e.value.message


async def test_finalize_refuses_a_vague_payment_with_the_field_named(world: World) -> None:
    async with world.db.session() as s:
        d = await agreement.create_draft(s, world.case_id, template="wages", author="staff:1")
        c = filled_content(d, world)
        c["terms"][0]["amount"] = ""
        c["terms"][0]["what"] = "尽快支付部分工资"
        await agreement.update_draft(s, d.id, c, author="staff:1")
        with pytest.raises(InvalidInput) as e:
            await agreement.finalize(s, d.id, author="staff:1", notary=world.notary)
    fields = [p["field"] for p in e.value.detail["problems"]]
    assert fields == ["terms[0].what", "terms[0].amount"]
    assert e.value.code == "vague_term" and "尽快" in e.value.message
