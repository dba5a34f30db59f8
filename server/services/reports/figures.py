"""Help given in a month, for the monthly statistics (services/reports/statistics.py): households
helped, aid granted by kind and amount, donations received and allocated, services given. Aggregates
only (no names); a town's figures are its households'."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from server.clock import TZ
from server.models import AidGrant, DonationAllocation, Family, ServiceRecord
from server.services.households import aid
from server.services.social import donations, services


def _money(value: Decimal) -> str:
    return f"{Decimal(value):.2f}"


def help_figures(
    db: Session, *, first_day: date, next_first: date, town_id: int | None = None
) -> dict[str, Any]:
    start = datetime.combine(first_day, time(), TZ)
    end = datetime.combine(next_first, time(), TZ)
    granted = aid.monthly_figures(db, start=start, end=end, town_id=town_id)
    gave = donations.monthly_figures(db, start=first_day, end=next_first, town_id=town_id)
    served = services.monthly_figures(db, start=first_day, end=next_first, town_id=town_id)
    helped = union(
        select(AidGrant.family_id).where(
            AidGrant.granted_at >= start,
            AidGrant.granted_at < end,
            *([AidGrant.town_id == town_id] if town_id is not None else []),
        ),
        select(DonationAllocation.family_id)
        .join(Family, Family.id == DonationAllocation.family_id)
        .where(
            DonationAllocation.allocated_on >= first_day,
            DonationAllocation.allocated_on < next_first,
            *([Family.town_id == town_id] if town_id is not None else []),
        ),
        select(ServiceRecord.family_id).where(
            ServiceRecord.served_on >= first_day,
            ServiceRecord.served_on < next_first,
            *([ServiceRecord.town_id == town_id] if town_id is not None else []),
        ),
    ).subquery()
    households = len(db.execute(select(helped.c[0])).all())
    return {
        "households_helped": households,
        "aid": {
            "households": granted["households"],
            "grants": sum(k["grants"] for k in granted["by_kind"]),
            "amount": _money(sum((k["amount"] for k in granted["by_kind"]), Decimal(0))),
            "by_kind": [{**k, "amount": _money(k["amount"])} for k in granted["by_kind"]],
        },
        "donations": {
            "received": gave["received"],
            "money_received": _money(gave["money_received"]),
            "goods_received": gave["goods_received"],
            "allocations": gave["allocations"],
            "money_allocated": _money(gave["money_allocated"]),
            "households": gave["households"],
        },
        "services": served,
    }
