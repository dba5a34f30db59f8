"""疑似重复: reports without an ID number beside the leads they may belong to."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from server.console.deps import actor, db, runtime
from server.console.format import CHANNEL_BADGES, LEAD_STATUS_LABELS
from server.console.security import page
from server.console.views import blp
from server.models import Role
from server.services.dispatches import worklist
from server.services.leads import access, detail, merging

HANDLERS = (Role.CENTER_STAFF, Role.TOWN_STAFF)
#: The fields compared side by side, with their labels.
COMPARED = (
    ("name", "姓名"),
    ("id_number", "身份证号"),
    ("phone", "联系电话"),
    ("town", "镇街"),
    ("village", "村居"),
    ("address", "住址"),
    ("categories", "类别"),
    ("channel", "来源渠道"),
    ("status", "状态"),
)


@blp.route("/duplicates")
@page(*HANDLERS)
def duplicates() -> Any:
    pairs = worklist.candidate_pairs(db(), actor=actor())
    return render_template("console/duplicates.html", pairs=pairs, scan=worklist.PAIR_SCAN)


@blp.route("/duplicates/<int:lead_id>")
@page(*HANDLERS)
def duplicate_pair(lead_id: int) -> Any:
    """The lead beside its n-th candidate (1 of N), differing fields marked."""
    who = actor()
    session = db()
    lead = access.access_lead_by_id(session, lead_id, actor=who)
    candidates = merging.find_candidates(session, lead, actor=who) if lead.is_open else []
    n = max(1, min(request.args.get("n", 1, type=int) or 1, max(1, len(candidates))))
    left = detail.lead_view(session, lead, pii=runtime().pii)
    right = candidate = None
    rows: list[dict[str, Any]] = []
    if candidates:
        candidate = candidates[n - 1]
        other = access.access_lead_by_id(session, candidate.lead_id, actor=who)
        right = detail.lead_view(session, other, pii=runtime().pii)
        rows = [
            {
                "label": label,
                "left": _shown(left, key),
                "right": _shown(right, key),
                "differs": _shown(left, key) != _shown(right, key),
            }
            for key, label in COMPARED
        ]
    return render_template(
        "console/duplicate_pair.html",
        left=left,
        right=right,
        candidate=candidate,
        rows=rows,
        n=n,
        total=len(candidates),
    )


def _shown(view: dict[str, Any], key: str) -> str:
    value = view.get(key)
    if key in ("town", "village"):
        return value["name"] if value else ""
    if key == "categories":
        return "、".join(view["category_labels"])
    if key == "channel":
        return CHANNEL_BADGES.get(value, value)
    if key == "status":
        return LEAD_STATUS_LABELS.get(value, value)
    return value or ""
