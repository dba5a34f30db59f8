"""户: households of my area, aid whose review is due (救助复核), and one household's chain."""

from __future__ import annotations

from typing import Any

from flask import render_template, request

from server.console import forms
from server.console.deps import actor, db, now, runtime
from server.console.security import page
from server.console.views import blp
from server.models import Role
from server.services.households import aid, chain, members

READERS = (Role.TOWN_STAFF, Role.CENTER_STAFF, Role.LEADER)
PER_PAGE = 20


@blp.route("/households", endpoint="households")
@page(*READERS)
def households_list() -> Any:
    """Households by a member's name; with `review_due`, the aid whose review date has passed
    (the worklist's 救助复核已到期), longest overdue first."""
    args = forms.parse(forms.HouseholdListArgs(), request.args)
    today = now().date()
    if args.get("review_due"):
        grants, total = aid.list_grants(
            db(), actor=actor(), today=today, due=True, page=args["page"], per_page=PER_PAGE
        )
        items = [aid.grant_view(db(), g, today=today) for g in grants]
        return render_template(
            "console/households.html", grants=items, total=total, args=args, families=None
        )
    rows, total = members.list_families(
        db(), actor=actor(), name=args.get("name"), page=args["page"], per_page=PER_PAGE
    )
    pii = runtime().pii
    families = [members.family_view(db(), f, pii=pii) for f in rows]
    return render_template(
        "console/households.html", families=families, total=total, args=args, grants=None
    )


@blp.route("/households/<int:household_id>", endpoint="household")
@page(*READERS)
def household_page(household_id: int) -> Any:
    """One household: its members (masked IDs), former members, and its chain (一户一链)."""
    family = members.access_family_by_id(db(), household_id, actor=actor())
    view = members.family_view(db(), family, pii=runtime().pii)
    story = chain.chain(db(), household_id, actor=actor(), now=now())
    return render_template(
        "console/household.html", household=view, chain=story, kinds=CHAIN_LABELS
    )


#: How the chain's kinds read on the page.
CHAIN_LABELS = {
    "lead": "线索",
    "evidence": "线索来源",
    "application": "申请",
    "decision": "办结",
    "slip": "转办",
    "feedback": "反馈",
    "aid": "救助发放",
    "visit": "走访",
    "revisit": "回访",
    "donation": "捐赠",
    "service": "服务",
}
