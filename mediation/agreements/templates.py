"""Chinese agreement templates for common disputes (R15). Blanks are marked 【…】 and must be filled before
finalizing; terms name the obliged side ("A"/"B", worded 甲方/乙方) and are bound to that side's first party when a draft is made.
"""

from __future__ import annotations

import copy
from typing import Any

from mediation.errors import NotFound

_B = "【请填写】"

TEMPLATES: dict[str, dict[str, Any]] = {
    "neighbours": {
        "name": "相邻关系纠纷",
        "facts": "双方系相邻关系。" + _B + "（如：乙方在共用通道堆放杂物/排水、采光、通行受阻等具体事实、时间、地点）",
        "disputed_matters": ["相邻通行（排水、采光）妨碍的排除", "因妨碍造成损失的赔偿"],
        "responsibility": {"A": _B + "（甲方应承担的责任）", "B": _B + "（乙方应承担的责任）"},
        "terms": [
            {"obligor_side": "B", "obligee_side": "A", "kind": "act",
             "what": "清除堆放于" + _B + "的杂物，恢复通道畅通", "method": "自行清除", "place": _B, "deadline": ""},
            {"obligor_side": "B", "obligee_side": "A", "kind": "payment", "what": "赔偿甲方损失",
             "amount": "", "currency": "CNY", "method": "银行转账至甲方账户", "place": _B, "deadline": ""},
        ],
    },
    "family_maintenance": {
        "name": "赡养费/抚养费纠纷",
        "facts": "甲方与乙方系" + _B + "关系。" + _B + "（被赡养/抚养人的生活状况、此前给付情况）",
        "disputed_matters": ["赡养费（抚养费）的数额与给付方式", "医疗等费用的分担"],
        "responsibility": {"A": _B, "B": "乙方依法负有赡养（抚养）义务"},
        "terms": [
            {"obligor_side": "B", "obligee_side": "A", "kind": "payment",
             "what": "按月给付赡养费（抚养费），每月" + _B + "日前支付当月费用，首期",
             "amount": "", "currency": "CNY", "method": "银行转账至甲方账户", "place": _B, "deadline": ""},
        ],
    },
    "wages": {
        "name": "劳动报酬纠纷",
        "facts": "甲方自" + _B + "起为乙方提供劳动，乙方拖欠甲方" + _B + "期间劳动报酬。",
        "disputed_matters": ["拖欠劳动报酬的数额", "支付期限"],
        "responsibility": {"A": "甲方已按约提供劳动", "B": "乙方未按时足额支付劳动报酬，应承担支付责任"},
        "terms": [
            {"obligor_side": "B", "obligee_side": "A", "kind": "payment", "what": "支付拖欠的劳动报酬",
             "amount": "", "currency": "CNY", "method": "银行转账至甲方工资卡", "place": _B, "deadline": ""},
        ],
    },
    "traffic": {
        "name": "道路交通事故损害赔偿纠纷",
        "facts": _B + "（事故时间、地点、经过）。经交警部门认定：" + _B + "（责任认定书编号及责任划分）。",
        "disputed_matters": ["医疗费、误工费、护理费、交通费及财产损失的赔偿数额", "保险理赔之外的赔偿责任"],
        "responsibility": {"A": _B + "（依责任认定书）", "B": _B + "（依责任认定书）"},
        "terms": [
            {"obligor_side": "B", "obligee_side": "A", "kind": "payment",
             "what": "一次性赔偿甲方医疗费、误工费、护理费、交通费及财产损失共计",
             "amount": "", "currency": "CNY", "method": "银行转账至甲方账户", "place": _B, "deadline": ""},
        ],
    },
    "property_management": {
        "name": "物业服务合同纠纷",
        "facts": "甲方为" + _B + "小区物业服务企业，乙方为该小区" + _B + "房屋业主，乙方欠缴" + _B + "期间物业费。",
        "disputed_matters": ["欠缴物业服务费的数额", "物业服务质量问题的整改"],
        "responsibility": {"A": "甲方应按合同约定提供物业服务，并整改" + _B, "B": "乙方应按合同约定交纳物业服务费"},
        "terms": [
            {"obligor_side": "B", "obligee_side": "A", "kind": "payment", "what": "交纳欠缴的物业服务费",
             "amount": "", "currency": "CNY", "method": "至物业服务中心缴纳或银行转账", "place": _B, "deadline": ""},
            {"obligor_side": "A", "obligee_side": "B", "kind": "act", "what": "完成" + _B + "的维修整改",
             "method": "派员维修", "place": _B, "deadline": ""},
        ],
    },
}


def template_names() -> dict[str, str]:
    return {key: t["name"] for key, t in TEMPLATES.items()}


def instantiate(key: str, parties: list[dict[str, Any]]) -> dict[str, Any]:
    """A draft content dict from a template, with the case's parties and terms bound to each side's first party."""
    if key not in TEMPLATES:
        raise NotFound(f"没有这个协议模板 / no template '{key}'", code="no_template", choices=sorted(TEMPLATES))
    t = copy.deepcopy(TEMPLATES[key])
    first: dict[str, int] = {}
    for p in parties:
        if p["kind"] == "party":
            first.setdefault(p["side"], p["person_id"])
    terms = []
    for term in t["terms"]:
        obligor_side, obligee_side = term.pop("obligor_side"), term.pop("obligee_side")
        terms.append({"obligor": first.get(obligor_side), "obligee": first.get(obligee_side), **term})
    return {
        "schema": "onedoor-agreement/1",
        "title": "人民调解协议书",
        "category": key,
        "parties": parties,
        "facts": t["facts"],
        "disputed_matters": t["disputed_matters"],
        "responsibility": t["responsibility"],
        "terms": terms,
        "performance": {"method": "按上述各项约定履行", "place": _B, "deadline": ""},
        "property": {"location": "", "rights_proof": []},
        "matters": {"decides_ownership": False, "special_procedure": False},
        "other": "",
    }
