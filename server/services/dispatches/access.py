"""Who sees and who acts on which slip (`scope_dispatches`, `access_dispatch_by_id`, the
receiving unit's own checks), and the receiving units themselves: towns and departments.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, and_, false, or_, select
from sqlalchemy.orm import Session

from server.errors import Conflict, Forbidden, NotFound, invalid
from server.models import (
    Department,
    Dispatch,
    DispatchState,
    Role,
    Town,
    UnitKind,
    User,
)
from server.services.kernel.access import Actor

STATE_LABELS: dict[DispatchState, str] = {
    DispatchState.ISSUED: "已转办",
    DispatchState.SIGNED: "已签收",
    DispatchState.RETURNED: "已退回",
    DispatchState.ANSWERED: "已反馈",
}


def scope_dispatches(query: Select, actor: Actor) -> Select:
    """Limit a query over slips to what `actor` may see, in the query itself.

    Center staff and leaders: every slip. Town staff: slips sent to their town, and slips about
    leads of their town (which their platform may have issued). Department staff: slips sent to
    their department. Anyone else: none.
    """
    if actor.role in (Role.CENTER_STAFF, Role.LEADER):
        return query
    if actor.role is Role.TOWN_STAFF and actor.town_id is not None:
        return query.where(
            or_(
                and_(Dispatch.unit_kind == UnitKind.TOWN, Dispatch.town_id == actor.town_id),
                Dispatch.lead_town_id == actor.town_id,
            )
        )
    if actor.role is Role.DEPARTMENT_STAFF and actor.department_id is not None:
        return query.where(
            Dispatch.unit_kind == UnitKind.DEPARTMENT,
            Dispatch.department_id == actor.department_id,
        )
    return query.where(false())


def access_dispatch_by_id(db: Session, dispatch_id: int, *, actor: Actor) -> Dispatch:
    """The slip if `actor` may see it; 404 otherwise (out of scope looks like absent)."""
    if not 0 < dispatch_id < 2**63:
        raise NotFound("未找到该转办单", code="dispatch_not_found")
    dispatch = db.scalar(
        scope_dispatches(select(Dispatch).where(Dispatch.id == dispatch_id), actor)
    )
    if dispatch is None:
        raise NotFound("未找到该转办单", code="dispatch_not_found")
    return dispatch


def is_receiver(dispatch: Dispatch, actor: Actor) -> bool:
    """Whether `actor` works for the unit the slip was sent to."""
    if dispatch.unit_kind is UnitKind.TOWN:
        return actor.role is Role.TOWN_STAFF and actor.town_id == dispatch.town_id
    return actor.role is Role.DEPARTMENT_STAFF and actor.department_id == dispatch.department_id


def require_receiver(dispatch: Dispatch, actor: Actor, what: str) -> None:
    """Only the receiving unit signs, returns and answers a slip (403 otherwise)."""
    if not is_receiver(dispatch, actor):
        raise Forbidden(f"只有接收单位可以{what}", code="not_receiving_unit")


def require_state(dispatch: Dispatch, allowed: set[DispatchState], what: str) -> None:
    """A change starts only from its allowed states (409 naming the current one)."""
    if dispatch.state not in allowed:
        raise Conflict(
            f"转办单当前状态为“{STATE_LABELS[dispatch.state]}”，不能{what}",
            code="dispatch_state",
        )


@dataclass(frozen=True)
class Unit:
    kind: UnitKind
    department_id: int | None
    town_id: int | None
    name: str


def resolve_unit(db: Session, kind: UnitKind, code: str) -> Unit:
    """The department or town with `code`; 422 when there is none."""
    if kind is UnitKind.DEPARTMENT:
        dept = db.scalar(select(Department).where(Department.code == code))
        if dept is None:
            raise invalid("unit_code", "未找到该部门", "department_not_found")
        return Unit(kind, dept.id, None, dept.name)
    town = db.scalar(select(Town).where(Town.code == code))
    if town is None:
        raise invalid("unit_code", "未找到该镇街", "town_not_found")
    return Unit(kind, None, town.id, town.name)


def unit_name(db: Session, dispatch: Dispatch) -> str:
    if dispatch.unit_kind is UnitKind.DEPARTMENT:
        dept = db.get(Department, dispatch.department_id)
        return dept.name if dept else ""
    town = db.get(Town, dispatch.town_id)
    return town.name if town else ""


def unit_staff_ids(db: Session, dispatch: Dispatch) -> list[int]:
    """Active staff accounts of the slip's receiving unit."""
    query = select(User.id).where(User.is_active.is_(True))
    if dispatch.unit_kind is UnitKind.DEPARTMENT:
        query = query.where(
            User.role == Role.DEPARTMENT_STAFF, User.department_id == dispatch.department_id
        )
    else:
        query = query.where(User.role == Role.TOWN_STAFF, User.town_id == dispatch.town_id)
    return list(db.scalars(query.order_by(User.id)))
