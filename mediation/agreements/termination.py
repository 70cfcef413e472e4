"""The fixed list of reasons a mediation ends (R28; OMR 21, 25). Stored in `Case.termination_reason`."""

from __future__ import annotations

TERMINATION_REASONS: dict[str, str] = {
    "agreement_reached": "达成调解协议",
    "party_refused_to_sign": "当事人拒绝签署调解协议",
    "party_withdrew": "当事人撤回调解申请或退出调解",
    "no_agreement": "经调解未能达成协议",
    "party_absent": "当事人无正当理由未参加调解",
    "timeout": "调解期限届满未达成协议",
    "transferred_to_litigation": "当事人选择诉讼等其他途径解决",
    "out_of_scope": "纠纷不属于调解受理范围",
    "other": "其他原因（须注明）",
}


def check_reason(reason: str) -> str:
    from mediation.errors import InvalidInput

    if reason not in TERMINATION_REASONS:
        raise InvalidInput(
            f"终止原因须从固定列表中选择 / unknown termination reason '{reason}'",
            code="invalid_termination_reason", choices=sorted(TERMINATION_REASONS),
        )
    return reason
