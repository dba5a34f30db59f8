"""Rows and choices prepared in Python for the hot pages: the template then writes plain
strings (a Jinja filter or method call per cell costs more than the row's database read)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from server.console.format import CHANNEL_BADGES, LEAD_STATUS_LABELS, cn_date
from server.services.leads.core import CATEGORIES
from server.services.leads.queue import QueueItem
from server.services.reports.statistics import CHANNEL_LABELS


class QueueRow(NamedTuple):
    id: int
    name: str
    has_id_number: bool
    priority: int
    reasons: str
    channel: str
    channel_badge: str
    channel_label: str
    categories: str
    area: str
    status: str
    created: str
    #: The person's household (id), or None, and how many of its other members' open leads
    #: the reader may see: shown beside the lead, never scored.
    household_id: int | None = None
    family_open_leads: int = 0


class Choice(NamedTuple):
    value: str
    label: str
    selected: bool


def queue_rows(
    items: Iterable[QueueItem],
    towns: Mapping[int, str],
    villages: Mapping[int, str],
) -> list[QueueRow]:
    rows = []
    for i in items:
        household_id, others = i.household or (None, [])
        area = towns.get(i.town_id, "") if i.town_id else ""
        if i.village_id:
            area = f"{area} / {villages.get(i.village_id, '')}"
        rows.append(
            QueueRow(
                id=i.id,
                name=i.name,
                has_id_number=i.has_id_number,
                priority=i.priority,
                reasons="；".join(json.loads(i.priority_reasons_json or "[]")),
                channel=i.channel,
                channel_badge=CHANNEL_BADGES.get(i.channel, i.channel),
                channel_label=CHANNEL_LABELS.get(i.channel, i.channel),
                categories="、".join(
                    CATEGORIES.get(c, c) for c in json.loads(i.categories_json or "[]")
                ),
                area=area,
                status=LEAD_STATUS_LABELS.get(i.status, i.status),
                created=cn_date(i.created_at),
                household_id=household_id,
                family_open_leads=len(others),
            )
        )
    return rows


def choices(labels: Mapping[str, str], selected: object) -> list[Choice]:
    return [Choice(value, label, value == selected) for value, label in labels.items()]
