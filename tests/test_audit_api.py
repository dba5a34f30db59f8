"""The audit trail: the audit administrator reads and filters it; nobody can change it through
the API."""

from __future__ import annotations

from datetime import datetime

import pytest

from server import clock
from server.models import AuditEntry, Channel, Role
from server.services.kernel import audit
from server.services.kernel.access import SYSTEM, Actor
from server.services.leads.core import Signal, record_signal
from tests.builders import make_id_number


def at(day: int, hour: int = 10) -> datetime:
    return datetime(2026, 10, day, hour, 0, tzinfo=clock.TZ)


def arrange(db) -> None:
    """Five entries by three actors over three days."""
    town = Actor(user_id=901, role=Role.TOWN_STAFF, town_id=1, ip="10.0.0.7")
    center = Actor(user_id=902, role=Role.CENTER_STAFF, ip="10.0.0.8")
    audit.record(db, actor=town, action="lead.triaged", target_type="lead", target_id=1, now=at(2))
    audit.record(db, actor=center, action="lead.closed", target_type="lead", target_id=1, now=at(3))
    audit.record_unmasked_view(
        db, actor=center, target_type="lead", target_id=2, fields=["phone", "id_number"],
        now=at(3, 15),
    )  # fmt: skip
    audit.record(
        db, actor=SYSTEM, action="dispatch.overdue", target_type="dispatch", target_id=7,
        now=at(4, 1),
    )  # fmt: skip
    audit.record_unmasked_export(
        db, actor=center, what="supervision.xlsx", fields=["name"], rows=12, now=at(4, 9)
    )
    db.commit()


def actions(resp) -> list[str]:
    assert resp.status_code == 200, resp.get_json()
    return [e["action"] for e in resp.get_json()["items"]]


def test_the_audit_administrator_reads_the_trail_newest_first(client, staff_login, db):
    arrange(db)
    center = staff_login(role="audit_admin")
    body = client.get("/api/v1/audit?to=2026-10-31", headers=center.headers).get_json()
    assert [e["action"] for e in body["items"]] == [
        "pii.exported",
        "dispatch.overdue",
        "pii.viewed",
        "lead.closed",
        "lead.triaged",
    ]
    first = body["items"][-1]
    assert first["actor_id"] == 901 and first["actor_role"] == "town_staff"
    assert first["ip"] == "10.0.0.7" and first["target_type"] == "lead"
    assert first["at"].startswith("2026-10-02T10:00:00")
    system = body["items"][1]
    assert system["actor_id"] is None and system["actor_name"] is None
    assert body["next_before"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("actor_id=901", ["lead.triaged"]),
        ("actor_role=town_staff&to=2026-10-31", ["lead.triaged"]),
        ("action=lead.closed", ["lead.closed"]),
        ("action=lead.", ["lead.closed", "lead.triaged"]),
        ("action=pii.", ["pii.exported", "pii.viewed"]),
        ("target_type=lead&target_id=1", ["lead.closed", "lead.triaged"]),
        ("from=2026-10-03&to=2026-10-03", ["pii.viewed", "lead.closed"]),
        ("from=2026-10-04&to=2026-10-31", ["pii.exported", "dispatch.overdue"]),
        ("ip=10.0.0.7", ["lead.triaged"]),
        ("unmasked=true&to=2026-10-31", ["pii.exported", "pii.viewed"]),
    ],
)
def test_the_trail_filters_by_who_what_which_record_when_and_where(
    client, staff_login, db, query, expected
):
    arrange(db)
    center = staff_login(role="audit_admin")
    assert actions(client.get(f"/api/v1/audit?{query}", headers=center.headers)) == expected


def test_an_entry_just_after_midnight_shanghai_time_counts_for_that_day(client, staff_login, db):
    """00:30 on 5 October in Shanghai is 16:30 UTC on the 4th: it belongs to the 5th."""
    audit.record(
        db,
        actor=SYSTEM,
        action="dispatch.overdue",
        target_type="dispatch",
        target_id=1,
        now=datetime(2026, 10, 5, 0, 30, tzinfo=clock.TZ),
    )
    db.commit()
    center = staff_login(role="audit_admin")
    assert actions(
        client.get("/api/v1/audit?from=2026-10-05&to=2026-10-05", headers=center.headers)
    )
    assert not actions(
        client.get("/api/v1/audit?from=2026-10-04&to=2026-10-04", headers=center.headers)
    )


def test_pages_follow_the_keyset_cursor_without_gaps_or_repeats(client, staff_login, db):
    for i in range(7):
        audit.record(
            db, actor=SYSTEM, action="lead.created", target_type="lead", target_id=i, now=at(10)
        )
    db.commit()
    center = staff_login(role="audit_admin")
    seen: list[int] = []
    url = "/api/v1/audit?action=lead.created&limit=3"
    page = client.get(url, headers=center.headers).get_json()
    while True:
        seen.extend(e["target_id"] for e in page["items"])
        if page["next_before"] is None:
            break
        page = client.get(f"{url}&before={page['next_before']}", headers=center.headers).get_json()
    assert seen == [6, 5, 4, 3, 2, 1, 0]


def test_one_entry_can_be_read_and_a_missing_one_is_404(client, staff_login, db):
    arrange(db)
    center = staff_login(role="audit_admin")
    entry_id = db.query(AuditEntry.id).filter(AuditEntry.action == "pii.viewed").scalar()
    resp = client.get(f"/api/v1/audit/{entry_id}", headers=center.headers)
    assert resp.status_code == 200
    assert resp.get_json()["detail"] == {"fields": ["id_number", "phone"]}
    assert client.get("/api/v1/audit/999999", headers=center.headers).status_code == 404


def test_entries_cannot_be_written_edited_or_deleted_through_the_api(client, staff_login, db):
    arrange(db)
    center = staff_login(role="audit_admin")
    entry_id = db.query(AuditEntry.id).filter(AuditEntry.action == "lead.closed").scalar()
    for method in ("put", "patch", "delete"):
        resp = getattr(client, method)(f"/api/v1/audit/{entry_id}", headers=center.headers)
        assert resp.status_code == 405, method
        assert resp.get_json()["code"] == "method_not_allowed"
    for method in ("post", "put", "patch", "delete"):
        resp = getattr(client, method)("/api/v1/audit", json={}, headers=center.headers)
        assert resp.status_code == 405, method
    assert db.query(AuditEntry).filter(AuditEntry.at < at(30)).count() == 5


def test_only_the_audit_administrator_reads_the_trail(client, staff_login, resident_login):
    assert client.get("/api/v1/audit").status_code == 401
    for login in (
        staff_login(role="center_staff"),
        staff_login(role="system_admin"),
        staff_login(role="security_admin"),
        staff_login(role="town_staff"),
        staff_login(role="department_staff"),
        staff_login(role="leader"),
        resident_login("ann"),
    ):
        assert client.get("/api/v1/audit", headers=login.headers).status_code == 403
        assert client.get("/api/v1/audit/1", headers=login.headers).status_code == 403


def test_bad_filters_are_refused_with_the_field_named(client, staff_login):
    center = staff_login(role="audit_admin")
    resp = client.get("/api/v1/audit?from=2026-10-05&to=2026-10-01", headers=center.headers)
    assert resp.status_code == 422 and "from" in resp.get_json()["errors"]
    resp = client.get("/api/v1/audit?actor_role=mayor", headers=center.headers)
    assert resp.status_code == 422 and "actor_role" in resp.get_json()["errors"]
    assert client.get("/api/v1/audit?limit=500", headers=center.headers).status_code == 422


def test_revealing_a_leads_personal_data_is_recorded_with_who_and_from_where(
    client, staff_login, db, runtime
):
    pii = runtime.pii
    id_number = make_id_number()
    lead = record_signal(
        db,
        Signal(
            channel=Channel.HOTLINE,
            name="王测试",
            summary="热线来电",
            dedup_key="hotline-1",
            person_hash=pii.hash(id_number),
            id_number_enc=pii.seal(id_number),
            phone_enc=pii.seal("13800001111"),
        ),
        actor=SYSTEM,
        now=clock.now(),
    ).lead
    db.commit()
    center = staff_login()
    auditor = staff_login(role="audit_admin")
    shown = client.post(
        f"/api/v1/leads/{lead.id}/personal-data",
        headers=center.headers,
        environ_base={"REMOTE_ADDR": "192.0.2.44"},
    )
    assert shown.status_code == 200 and shown.get_json()["id_number"] == id_number
    body = client.get("/api/v1/audit?unmasked=true", headers=auditor.headers).get_json()
    (entry,) = body["items"]
    assert entry["actor_id"] == center.user_id and entry["actor_role"] == "center_staff"
    assert entry["target_type"] == "lead" and entry["target_id"] == lead.id
    assert entry["ip"] == "192.0.2.44"
    assert id_number not in str(entry) and "13800001111" not in str(entry)


def test_the_trail_never_stores_a_clear_id_or_mobile_number(db, runtime):
    id_number = make_id_number()
    entry = audit.record(
        db,
        actor=SYSTEM,
        action="lead.note",
        target_type="lead",
        target_id=1,
        now=clock.now(),
        detail={"note": f"身份证{id_number}，电话 13912345678", "list": [id_number], "n": 3},
    )
    db.commit()
    assert id_number not in str(entry.detail) and "13912345678" not in str(entry.detail)
    assert entry.detail["note"].endswith("电话 139****5678") and entry.detail["n"] == 3
    assert entry.detail["list"] == [id_number[:6] + "********" + id_number[14:]]


def test_unmasked_export_helper_records_what_which_fields_and_how_many_rows(db):
    center = Actor(user_id=5, role=Role.CENTER_STAFF, ip="10.9.9.9")
    entry = audit.record_unmasked_export(
        db,
        actor=center,
        what="dispatches.xlsx",
        fields=["phone", "id_number"],
        rows=40,
        now=clock.now(),
        filters={"town": "chengdong"},
    )
    db.commit()
    assert entry.action == "pii.exported" and entry.ip == "10.9.9.9"
    assert entry.detail == {
        "what": "dispatches.xlsx",
        "fields": ["id_number", "phone"],
        "rows": 40,
        "filters": {"town": "chengdong"},
    }
