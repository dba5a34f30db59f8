"""审计 in the console: the audit administrator's filtered, audited, exportable trail, and the
three administrators kept out of every casework page (三员分立)."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from server.console.security import ADMIN_ROLES
from server.demo.seed import DEMO_PASSWORD
from server.models import AuditEntry, Lead
from tests.console_helpers import console_login, post

PASSWORD = "correct-horse-9"
#: The administrators' own console pages (every other page refuses them).
ADMIN_PAGES = {
    "console.home",
    "console.audit",
    "console.audit_export",
    "console.feed_settings",
    "console.feed_settings_save",
    "console.admin_holidays",
    "console.admin_holidays_preview",
    "console.admin_holidays_load",
    "console.admin_outbox",
    "console.admin_locks",
    "console.admin_unlock",
    "console.admin_lock",
    "console.admin_staff",
    "console.admin_staff_create",
    "console.admin_staff_change",
    "console.admin_staff_reset",
    "console.admin_villages",
    "console.admin_villages_preview",
    "console.admin_villages_load",
}


def _reveal(client, db) -> int:  # noqa: ANN001
    lead_id = db.scalar(select(Lead.id).where(Lead.id_number_enc.is_not(None)).limit(1))
    csrf = console_login(client, "center", DEMO_PASSWORD)
    assert post(client, f"/console/leads/{lead_id}/reveal", csrf).status_code == 200
    return lead_id


def _count(db, action: str) -> int:  # noqa: ANN001
    db.expire_all()
    return db.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
    )


def test_console_audit_admin_finds_a_reveal_and_the_read_is_itself_audited(client, demo, db, staff):
    lead_id = _reveal(client, db)
    auditor = client.application.test_client()
    console_login(auditor, staff("audit_admin"), PASSWORD)
    before = _count(db, "audit.read")
    page = auditor.get(f"/console/audit?action=pii.viewed&target_type=lead&target_id={lead_id}")
    assert page.status_code == 200
    assert "查看完整个人信息" in page.text and f"lead #{lead_id}" in page.text
    assert _count(db, "audit.read") == before + 1
    only_unmasked = auditor.get("/console/audit?unmasked=true").text.split('id="audit-results"')[1]
    assert "pii.viewed" in only_unmasked and "login.succeeded" not in only_unmasked
    by_actor = auditor.get("/console/audit?actor=center&action=pii.viewed").text
    assert f"lead #{lead_id}" in by_actor
    nobody = auditor.get("/console/audit?actor=nobody-at-all").text
    assert "没有符合条件的审计记录" in nobody
    assert auditor.get("/console/audit?from=2026-12-02&to=2026-12-01").status_code == 422


def test_console_audit_export_is_the_filtered_trail_and_is_audited(client, demo, db, staff):
    lead_id = _reveal(client, db)
    auditor = client.application.test_client()
    console_login(auditor, staff("audit_admin"), PASSWORD)
    resp = auditor.get("/console/audit.xlsx?unmasked=true")
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "private, no-store"
    rows = list(load_workbook(io.BytesIO(resp.data)).active.iter_rows(min_row=2, values_only=True))
    assert rows and {r[5] for r in rows} <= {"pii.viewed", "pii.exported"}
    assert any(r[6] == "lead" and r[7] == lead_id for r in rows)
    assert _count(db, "audit.exported") == 1


@pytest.mark.parametrize("role", ["center_staff", "leader", "town_staff", "system_admin"])
def test_console_audit_refuses_everyone_but_the_audit_administrator(client, staff, role):
    console_login(client, staff(role), PASSWORD)
    assert client.get("/console/audit").status_code == 403
    assert client.get("/console/audit.xlsx").status_code == 403


def test_console_audit_admin_lands_on_the_trail_and_sees_no_case(client, staff):
    page = client.get("/console/login")
    from tests.console_helpers import csrf_of

    resp = client.post(
        "/console/login",
        data={
            "username": staff("audit_admin"),
            "password": PASSWORD,
            "csrf_token": csrf_of(page.text),
        },
    )
    assert resp.status_code == 303
    home = client.get("/console/")
    assert home.status_code == 302 and home.headers["Location"].endswith("/console/audit")
    for path in ("/console/leads", "/console/reports", "/console/dashboard", "/console/dispatches"):
        assert client.get(path).status_code == 403, path


def test_console_no_casework_page_lets_an_administrator_in(app):
    """三员分立: every console page that admits an administrator is one of theirs."""
    offenders = [
        endpoint
        for endpoint, view in app.view_functions.items()
        if endpoint.startswith("console.")
        and set(getattr(view, "allowed_roles", ())) & ADMIN_ROLES
        and endpoint not in ADMIN_PAGES
    ]
    assert offenders == []
