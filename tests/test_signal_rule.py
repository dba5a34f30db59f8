"""One rule for how signals change a lead (services/leads/signal_rule.py), used by `record_signal`,
the feed importer's bulk path and `merge_leads`: the same signals give the same priority
whichever way they arrive. Leads a feed opens carry their `lead.created` audit trail."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from server.models import AuditEntry, Lead
from server.services.leads.signal_rule import Gain, LeadState, apply_signals
from tests.builders import make_id_number
from tests.builders.applications import application_body, file, photo_id, village
from tests.feedfiles import OOP_HEADER, upload, xlsx


@pytest.mark.parametrize(
    ("state", "gains", "priority", "reasons", "fresh"),
    [
        # a reason counts once, whoever brings it
        (LeadState(), [Gain("a", (), 3, "热线"), Gain("b", (), 3, "热线")], 3, ["热线"], 2),
        # a key the lead holds adds nothing, not even its categories
        (LeadState(evidence_keys={"a"}), [Gain("a", ("illness",), 3, "热线")], 0, [], 0),
        # the same key twice in one call is one signal
        (LeadState(), [Gain("a", (), 2, "医保"), Gain("a", (), 2, "医保")], 2, ["医保"], 1),
        # a reason the lead already has adds no points
        (LeadState(priority=5, reasons=("医保",)), [Gain("x", (), 5, "医保")], 5, ["医保"], 1),
        # no reason, no points
        (LeadState(), [Gain("a", ("dibao",), 4, None)], 0, [], 1),
    ],
)
def test_the_one_rule_counts_each_reason_once_and_each_signal_once(
    state, gains, priority, reasons, fresh
):
    change = apply_signals(state, gains)
    assert (change.priority, change.reasons, len(change.fresh)) == (priority, reasons, fresh)


def test_categories_are_added_once_in_arrival_order():
    change = apply_signals(
        LeadState(categories=("dibao",)),
        [Gain("a", ("illness", "dibao")), Gain("b", ("accident", "illness"))],
    )
    assert change.categories == ["dibao", "illness", "accident"]
    assert change.added_categories == ["illness", "accident"]


# --- the same signals, three ways -----------------------------------------------------------


def post(client, login, path: str, body: dict[str, Any]):
    return client.post(f"/api/v1{path}", headers=login.headers, json=body)


def report(client, login, *, id_number: str | None, channel: str, categories: list[str], **kw):
    body = {
        "channel": channel,
        "name": "刘翠兰",
        "summary": "邻居反映家中老人病重无人照顾",
        "town": "chengdong",
        "categories": categories,
        "id_number": id_number,
        **kw,
    }
    resp = post(client, login, "/leads", body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["lead"]


def feed_row(client, login, id_number: str) -> None:
    content = xlsx(
        [OOP_HEADER, [1, "刘翠兰", id_number, "博山区医院", "2026-10-01", "2026-10-20", 32400]]
    )
    resp = upload(client, login, "insurance_oop", content)
    assert resp.status_code == 201, resp.get_json()


def apply_for(client, resident, id_number: str) -> int:
    body = application_body(photos=[photo_id(client, resident)])
    body["applicant"] = {**body["applicant"], "id_number": id_number, "name": "刘翠兰"}
    resp = file(client, resident, body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["lead_id"]


HOTLINE = {"channel": "hotline", "categories": ["illness"]}
#: The same words, so the same reason ("救助热线：因病（+3）"): it counts once.
HOTLINE_AGAIN = {"channel": "hotline", "categories": ["illness"]}
POLICE = {"channel": "police_110", "categories": ["accident"], "urgent": True}


def the_lead(db, lead_id: int) -> Lead:
    db.expire_all()
    lead = db.get(Lead, lead_id)
    assert lead is not None
    return lead


def test_the_same_signals_by_application_feed_file_and_merge_give_the_same_priority(
    client, staff_login, resident_login, db
):
    """Person A: every signal carries the ID number, so each lands in A's lead directly.
    Person B: the same signals, the feed file last, and the 110 report and the repeated hotline
    report taken without an ID number (their own leads, merged into one, then into B's).
    Before the one rule, that merge added the folded lead's whole priority (+13) although its
    hotline reason was already on B's lead (+10 is right)."""
    village(db)
    center = staff_login(role="center_staff")
    resident = resident_login("liu")
    a, b = make_id_number(), make_id_number()

    lead_a = apply_for(client, resident, a)
    feed_row(client, center, a)
    for signal in (HOTLINE, HOTLINE_AGAIN, POLICE):
        report(client, center, id_number=a, **signal)

    lead_b = apply_for(client, resident_login("liu2"), b)
    report(client, center, id_number=b, **HOTLINE)
    again = report(client, center, id_number=None, **HOTLINE_AGAIN)
    police = report(client, center, id_number=None, **POLICE)
    folded = post(client, center, f"/leads/{police['id']}/merge", {"into_lead_id": again["id"]})
    assert folded.status_code == 200, folded.get_json()
    merged = post(client, center, f"/leads/{again['id']}/merge", {"into_lead_id": lead_b})
    assert merged.status_code == 200, merged.get_json()
    feed_row(client, center, b)

    one, other = the_lead(db, lead_a), the_lead(db, lead_b)
    feed = 3  # insurance_oop's weight; hotline + 因病 = 3; 110 + 因意外 + 紧急 = 10
    assert one.priority == other.priority == feed + 3 + 10, (one.priority, other.priority)
    assert sorted(one.priority_reasons) == sorted(other.priority_reasons)
    assert sorted(one.categories) == sorted(other.categories)

    undone = post(client, center, f"/leads/{again['id']}/unmerge", {})
    assert undone.status_code == 200
    assert the_lead(db, lead_b).priority == feed + 3  # exactly what the merge gave is taken


def test_leads_opened_by_a_feed_file_have_their_lead_created_audit_row(client, staff_login, db):
    center = staff_login(role="center_staff")
    numbers = [make_id_number() for _ in range(3)]
    rows = [OOP_HEADER] + [
        [i, f"病人{i}", n, "博山区医院", "2026-10-01", "2026-10-20", 30000 + i]
        for i, n in enumerate(numbers, start=1)
    ]
    resp = upload(client, center, "insurance_oop", xlsx(rows))
    assert resp.status_code == 201, resp.get_json()
    db.expire_all()
    created = set(db.scalars(select(Lead.id)))
    (audit,) = db.scalars(select(AuditEntry).where(AuditEntry.action == "lead.created"))
    assert (audit.target_type, audit.target_id) == ("feed_batch", resp.get_json()["id"])
    assert set(audit.detail["leads"]) == created and len(created) == 3
    assert audit.actor_id == center.user_id
    # the same file again opens nothing and writes no second trail
    upload(client, center, "insurance_oop", xlsx(rows))
    assert len(list(db.scalars(select(AuditEntry).where(AuditEntry.action == "lead.created")))) == 1
