"""Labels residents read, shared by applications, transfer-slip feedback and notifications:
the kinds of aid, and the outcomes of an investigation.

A receiving unit reports one of the outcome codes; the applicant reads the Chinese label (with
the reason or amount where the outcome carries one).
"""

from __future__ import annotations

from server.models import ApplicationType

TYPE_LABELS: dict[ApplicationType, str] = {
    ApplicationType.DIBAO: "最低生活保障",
    ApplicationType.TEKUN: "特困人员供养",
    ApplicationType.TEMPORARY: "临时救助",
    ApplicationType.MEDICAL: "医疗救助",
}

#: Outcome code → plain-Chinese label shown to residents and staff.
OUTCOMES: dict[str, str] = {
    "dibao": "纳入低保",
    "tekun": "纳入特困供养",
    "temporary_aid": "给予临时救助",
    "medical_aid": "给予医疗救助",
    "education_aid": "给予教育救助",
    "housing_aid": "给予住房救助",
    "employment_aid": "给予就业救助",
    "disaster_aid": "给予受灾人员救助",
    "not_eligible": "不符合条件",
    "referred": "已转介其他部门或社会力量",
}

#: The outcomes that answer an application of each kind: 纳入低保 is no answer to a 医疗救助
#: application. The district's rule (博山区主动发现机制, 三.3): for hardship in basic living
#: the town places the person in 低保, 特困供养 or 临时救助, whichever the investigation shows,
#: so any of the three answers an application for any of them (and 受灾人员救助 a temporary
#: need after a disaster). A 医疗救助 application is answered by 医疗救助 — or by 临时救助
#: when a sudden grave illness leaves the household's basic living in passing hardship
#: (《社会救助暂行办法》第四十七条). Every kind may be refused or referred.
_EITHER = frozenset({"not_eligible", "referred"})
_BASIC_LIVING = frozenset({"dibao", "tekun", "temporary_aid"})
FITTING: dict[ApplicationType, frozenset[str]] = {
    ApplicationType.DIBAO: _EITHER | _BASIC_LIVING,
    ApplicationType.TEKUN: _EITHER | _BASIC_LIVING,
    ApplicationType.TEMPORARY: _EITHER | _BASIC_LIVING | {"disaster_aid"},
    ApplicationType.MEDICAL: _EITHER | {"medical_aid", "temporary_aid"},
}

#: Outcomes that must carry a reason (the resident is told why).
NEEDS_REASON = frozenset({"not_eligible", "referred"})
#: Outcomes that carry an amount in yuan.
HAS_AMOUNT = frozenset({"temporary_aid", "medical_aid"})
#: Outcomes that may carry an amount in yuan (those in HAS_AMOUNT must).
AMOUNT_ALLOWED = frozenset({"dibao", "tekun", "temporary_aid", "medical_aid", "education_aid"})
#: Outcomes that grant aid (everything but not eligible and referred).
GRANTS_AID = frozenset(OUTCOMES) - {"not_eligible", "referred"}


def outcome_text(code: str, reason: str | None = None, amount: str | None = None) -> str:
    """ "不符合条件（家庭收入高于标准）" or "给予临时救助 2000 元"."""
    label = OUTCOMES.get(code, code)
    if amount:
        label = f"{label} {amount} 元"
    if reason:
        label = f"{label}（{reason}）"
    return label
