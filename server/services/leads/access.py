"""Who sees which lead: the scope by role and area (`scope_leads`, `access_lead_by_id`), and
what a department may see of a lead: the categories its own feeds brought.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Select,
    bindparam,
    false,
    literal_column,
    select,
)
from sqlalchemy.orm import Session

from server.errors import NotFound
from server.models import (
    Department,
    Lead,
    LeadEvidence,
    Role,
)
from server.services.feeds import registry as feed_registry
from server.services.kernel.access import Actor


def scope_leads(query: Select, actor: Actor) -> Select:
    """Limit a query over leads to what `actor` may see, in the query itself.

    center staff and leaders: every lead; town staff: their town's; helpers: their village's;
    department staff: leads carrying evidence from their department (a file row or a report
    the department passed on) — none when the account has no department; residents: none.
    The rule itself is `scope_shape` + `scope_condition`, shared with the queue's cached
    statements.
    """
    shape, params = scope_shape(actor)
    condition = scope_condition(shape)
    if condition is None:
        return query
    return query.where(condition).params(**params)


def access_lead_by_id(db: Session, lead_id: int, *, actor: Actor, for_update: bool = False) -> Lead:
    """The lead if `actor` may see it; 404 otherwise (out of scope looks like absent)."""
    if not 0 < lead_id < 2**63:
        raise NotFound("未找到该线索", code="lead_not_found")
    query = scope_leads(select(Lead).where(Lead.id == lead_id), actor)
    if for_update:
        query = query.with_for_update()
    lead = db.scalar(query)
    if lead is None:
        raise NotFound("未找到该线索", code="lead_not_found")
    return lead


def _feed_categories(feed: feed_registry.Feed) -> set[str]:
    """What a feed's row may bring: its categories on or off the roster (either may apply)."""
    return {*feed.categories, *feed.categories_off_roster}


def categories_brought(feed_code: str | None, facts: dict[str, Any] | None) -> set[str]:
    """The categories one piece of evidence brought to its lead: its feed's, or those a report
    named."""
    if feed_code is not None:
        feed = feed_registry.BY_CODE.get(feed_code)
        return _feed_categories(feed) if feed else set()
    return set((facts or {}).get("categories") or ())


def among(categories: list[str], brought: set[str]) -> list[str]:
    return [c for c in categories if c in brought]


def department_brings(conn: Connection | Session, department_id: int, category: str) -> bool:
    """Whether a department's own evidence can bring `category`: one of its feeds does, or one
    of its reports named it (read only when no feed does). Its staff filter the queue by such
    categories only, so a filter never tells them another department's facts (医保 staff asking
    for 残疾 leads learn nothing 残联 sent)."""
    code = conn.execute(
        select(Department.code).where(Department.id == department_id)
    ).scalar_one_or_none()
    feeds = (f for f in feed_registry.FEEDS if f.department == code)
    if any(category in _feed_categories(f) for f in feeds):
        return True
    reports = conn.execute(
        select(LeadEvidence.facts).where(
            LeadEvidence.department_id == department_id, LeadEvidence.feed_code.is_(None)
        )
    )
    return any(category in categories_brought(None, facts) for (facts,) in reports)


def scope_shape(actor: Actor) -> tuple[str, dict[str, Any]]:
    """`scope_leads` as a named shape with its bound values (for the statement cache)."""
    if actor.role in (Role.CENTER_STAFF, Role.LEADER):
        return "all", {}
    if actor.role is Role.TOWN_STAFF:
        return "town", {"scope_id": actor.town_id}
    if actor.role is Role.HELPER:
        return "village", {"scope_id": actor.village_id}
    if actor.role is Role.DEPARTMENT_STAFF and actor.department_id is not None:
        return "department", {"scope_id": actor.department_id}
    return "none", {}


def scope_condition(scope: str, lead: Any = Lead) -> Any:
    """The condition of a scope on `lead` (the leads table, or an alias of it in a subquery)."""
    scope_id = bindparam("scope_id", type_=Integer)
    if scope == "all":
        return None
    if scope == "town":
        return lead.town_id == scope_id
    if scope == "village":
        return lead.village_id == scope_id
    if scope == "department":
        return has_evidence(LeadEvidence.department_id == scope_id, lead=lead)
    return false()


def has_evidence(condition: Any, lead: Any = Lead) -> Any:
    """The lead has evidence that meets `condition`. `SELECT 1`, not `SELECT *`: SQLite then
    answers from an index that holds the lead and the condition's column, without reading the
    evidence row."""
    return select(literal_column("1")).where(LeadEvidence.lead_id == lead.id, condition).exists()
