"""The agreement's structured content (R15) and its validation. Pure: no database, no I/O.

Content is a plain JSON-able dict (schema `onedoor-agreement/1`):

    parties            [{person_id, side, kind, name, id_number, phone, address, represents}]  (from Person rows)
    facts              str                 main facts
    disputed_matters   [str]
    responsibility     {"A": str, "B": str}  each side's responsibility
    terms              [{obligor, obligee, kind, what, amount, currency, method, place, deadline}]
    performance        {method, place, deadline}   how / where / by when the agreement as a whole is performed
    property           {location, rights_proof: [str]}   optional (R22 venue, R23 proof of property rights)
    matters            {decides_ownership: bool, special_procedure: bool}   (R24 eligibility)
    other              str                 optional further clauses

`problems()` lists every defect with the field path that has it; `validate()` raises `InvalidInput` naming the first.
Vague wording (R15, CPL-I 358 (5) "内容不明确"): a clause a court cannot enforce is refused before signing.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from mediation.errors import InvalidInput

SCHEMA = "onedoor-agreement/1"
PLACEHOLDER = "【"  # templates mark blanks as 【...】; a blank left in is an unfinished clause
TERM_KINDS = ("payment", "act")
CURRENCIES = ("CNY",)

# Words that make a clause unenforceable: no date, no amount, no definite act.
VAGUE_TERMS = (
    "尽快", "尽早", "尽量", "适当", "合理", "酌情", "酌定", "大概", "大约", "左右", "若干", "一些", "部分款项",
    "视情况", "看情况", "另行协商", "再议", "再行商定", "适时", "近期", "近日", "择日", "有空", "差不多",
    "等等", "相关费用", "有关费用", "一定数额", "一定金额", "as soon as possible", "asap", "reasonable",
    "appropriate", "approximately", "some time", "soon",
)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class Problem:
    field: str
    code: str
    message: str  # for logs and API users; pages word the problem from `code`, `field` and `word`
    word: str = ""  # the vague word of a `vague_term`

    def to_dict(self) -> dict[str, str]:
        out = {"field": self.field, "code": self.code, "message": self.message}
        if self.word:
            out["word"] = self.word
        return out


def find_vague(text: str) -> str | None:
    low = text.lower()
    for word in VAGUE_TERMS:
        if word in low:
            return word
    return None


class _Checker:
    def __init__(self) -> None:
        self.found: list[Problem] = []

    def add(self, field: str, code: str, message: str, word: str = "") -> None:
        if field not in message:
            message = f"{message} ({field})"
        self.found.append(Problem(field, code, message, word))

    def text(self, field: str, value: Any, label: str, *, vague: bool = True) -> None:
        if not isinstance(value, str) or not value.strip():
            self.add(field, "missing_field", f"请填写{label} / {field} is required")
            return
        if PLACEHOLDER in value:
            self.add(field, "placeholder", f"{label}仍有未填写的模板空白【…】/ {field} still has a template blank")
            return
        word = find_vague(value) if vague else None
        if word:
            self.add(
                field, "vague_term",
                f"{label}含有不明确的表述「{word}」，请写明具体金额、日期或行为 / {field} is vague ('{word}'): "
                "state the exact amount, date or act", word,
            )

    def date(self, field: str, value: Any, label: str, today: dt.date | None) -> None:
        if not isinstance(value, str) or not value.strip():
            self.add(field, "missing_deadline", f"请写明{label}（具体日期）/ {field}: a definite date is required")
            return
        if not _DATE.match(value):
            self.add(field, "vague_term", f"{label}须为具体日期（YYYY-MM-DD）/ {field} must be a date YYYY-MM-DD")
            return
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            self.add(field, "invalid_date", f"{label}不是有效日期 / {field} is not a valid date")
            return
        if today is not None and day < today:
            self.add(field, "deadline_past", f"{label}早于今天 / {field} is in the past")


def _amount_problem(value: Any) -> str | None:
    if value is None or value == "":
        return "missing_amount"
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return "invalid_amount"
    if not amount.is_finite() or amount <= 0 or amount.as_tuple().exponent < -2:  # type: ignore[operator]
        return "invalid_amount"
    return None


def problems(content: dict[str, Any], *, today: dt.date | None = None) -> list[Problem]:
    """Every defect that stops this content from being finalized, in document order."""
    c = _Checker()
    parties = content.get("parties") or []
    party_ids = {p.get("person_id") for p in parties if p.get("kind") == "party"}
    sides = {p.get("side") for p in parties if p.get("kind") == "party"}
    if not sides >= {"A", "B"}:
        c.add("parties", "missing_field", "协议须载明双方当事人 / parties of both sides are required")
    for i, p in enumerate(parties):
        for key, label in (("name", "姓名/名称"), ("id_number", "身份证件号码"), ("address", "住所"),
                           ("phone", "联系电话")):
            if not str(p.get(key) or "").strip():
                c.add(f"parties[{i}].{key}", "missing_field",
                      f"当事人信息缺少{label} / parties[{i}].{key} is required")
    c.text("facts", content.get("facts"), "主要事实", vague=False)
    matters = content.get("disputed_matters") or []
    if not matters:
        c.add("disputed_matters", "missing_field", "请填写争议事项 / disputed_matters is required")
    for i, m in enumerate(matters):
        c.text(f"disputed_matters[{i}]", m, "争议事项", vague=False)
    resp = content.get("responsibility") or {}
    for side in ("A", "B"):
        c.text(f"responsibility.{side}", resp.get(side), f"{side}方责任")
    terms = content.get("terms") or []
    if not terms:
        c.add("terms", "missing_field", "协议须有至少一项协议内容 / at least one agreed term is required")
    for i, t in enumerate(terms):
        f = f"terms[{i}]"
        if t.get("obligor") is None:
            c.add(f"{f}.obligor", "missing_obligor", f"第{i + 1}项未写明履行义务人 / {f} has no obligor")
        elif t.get("obligor") not in party_ids:
            c.add(f"{f}.obligor", "unknown_party", f"第{i + 1}项义务人不是本案当事人 / {f}.obligor is not a party")
        if t.get("obligee") is None:
            c.add(f"{f}.obligee", "missing_obligee", f"第{i + 1}项未写明权利人 / {f} has no obligee")
        elif t.get("obligee") not in party_ids:
            c.add(f"{f}.obligee", "unknown_party", f"第{i + 1}项权利人不是本案当事人 / {f}.obligee is not a party")
        elif t.get("obligee") == t.get("obligor"):
            c.add(f"{f}.obligee", "same_party", f"第{i + 1}项义务人与权利人相同 / {f}: obligor equals obligee")
        kind = t.get("kind")
        if kind not in TERM_KINDS:
            c.add(f"{f}.kind", "invalid_kind", f"{f}.kind must be one of {', '.join(TERM_KINDS)}")
        c.text(f"{f}.what", t.get("what"), f"第{i + 1}项内容")
        if kind == "payment":
            code = _amount_problem(t.get("amount"))
            if code == "missing_amount":
                c.add(f"{f}.amount", "missing_amount", f"第{i + 1}项付款未写明金额 / {f}: a payment needs an amount")
            elif code:
                c.add(f"{f}.amount", code, f"第{i + 1}项金额无效（正数，最多两位小数）/ {f}.amount is invalid")
            if t.get("currency", "CNY") not in CURRENCIES:
                c.add(f"{f}.currency", "invalid_currency", f"{f}.currency must be CNY")
        c.text(f"{f}.method", t.get("method"), f"第{i + 1}项履行方式")
        c.text(f"{f}.place", t.get("place"), f"第{i + 1}项履行地点")
        c.date(f"{f}.deadline", t.get("deadline"), f"第{i + 1}项履行期限", today)
    perf = content.get("performance") or {}
    c.text("performance.method", perf.get("method"), "履行方式")
    c.text("performance.place", perf.get("place"), "履行地点")
    c.date("performance.deadline", perf.get("deadline"), "履行期限", today)
    other = content.get("other")
    if isinstance(other, str) and other.strip():
        c.text("other", other, "其他约定")
    return c.found


def validate(content: dict[str, Any], *, today: dt.date | None = None) -> None:
    """Raise `InvalidInput` naming the first defective field (all of them are in `detail["problems"]`)."""
    found = problems(content, today=today)
    if found:
        first = found[0]
        raise InvalidInput(
            first.message, code=first.code, field=first.field, problems=[p.to_dict() for p in found]
        )


def check_shape(content: Any) -> dict[str, Any]:
    """Structural check for saving a draft (drafts may be incomplete, but must have the right shape)."""
    if not isinstance(content, dict):
        raise InvalidInput("协议内容格式错误 / content must be an object", code="invalid_content")
    expected: dict[str, type | tuple[type, ...]] = {
        "facts": str, "disputed_matters": list, "responsibility": dict, "terms": list, "performance": dict,
        "property": dict, "matters": dict, "other": str, "title": str,
    }
    for key, typ in expected.items():
        if key in content and not isinstance(content[key], typ):
            raise InvalidInput(f"{key} 格式错误 / {key} has the wrong type", code="invalid_content", field=key)
    for i, t in enumerate(content.get("terms") or []):
        if not isinstance(t, dict):
            raise InvalidInput(f"terms[{i}] 格式错误", code="invalid_content", field=f"terms[{i}]")
        if t.get("amount") is not None:
            t["amount"] = str(t["amount"])
    return content
