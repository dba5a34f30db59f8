"""Who is acting, and the few places that decide what they may see.

Views turn a bearer token into an `Actor`; services take `actor=` and filter by jurisdiction in
the query itself (never by loading rows and discarding them afterwards).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, false

from server.errors import Forbidden
from server.models import Role


@dataclass(frozen=True, slots=True)
class Actor:
    user_id: int | None
    role: Role
    town_id: int | None = None
    village_id: int | None = None
    department_id: int | None = None
    ip: str | None = None

    @property
    def is_center(self) -> bool:
        return self.role is Role.CENTER_STAFF

    @property
    def is_staff(self) -> bool:
        return self.role in {
            Role.TOWN_STAFF,
            Role.DEPARTMENT_STAFF,
            Role.CENTER_STAFF,
            Role.LEADER,
        }


#: The worker and scheduled checks act as the system.
SYSTEM = Actor(user_id=None, role=Role.CENTER_STAFF)


def require_role(actor: Actor, *roles: Role) -> None:
    if actor.role not in roles:
        raise Forbidden()


def scope_by_area(query: Select, actor: Actor, *, town_col, village_col) -> Select:  # noqa: ANN001
    """Limit a query over rows that carry a town and village to what `actor` may see."""
    if actor.role in (Role.CENTER_STAFF, Role.LEADER):
        return query
    if actor.role is Role.TOWN_STAFF:
        return query.where(town_col == actor.town_id)
    if actor.role is Role.HELPER:
        return query.where(village_col == actor.village_id)
    return query.where(false())
