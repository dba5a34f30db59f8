"""三员分立: the system, security and audit administrators are separate roles; none can do
another's work, none does casework, and center staff keep their casework but lose the
administrators' rooms."""

from __future__ import annotations

import pytest

ADMINS = ["system_admin", "security_admin", "audit_admin"]

#: (method, path, body, the one administrator allowed)
ADMIN_WORK = [
    ("GET", "/api/v1/staff", None, "system_admin"),
    (
        "POST",
        "/api/v1/staff",
        {"username": "sod-new", "password": "Handed-out-1", "role": "leader"},
        "system_admin",
    ),
    ("POST", "/api/v1/villages", {"town": "baita", "code": "s1", "name": "分立村"}, "system_admin"),
    ("PATCH", "/api/v1/feeds/fire/settings", {"column_aliases": {}}, "system_admin"),
    ("GET", "/api/v1/security/locked-accounts", None, "security_admin"),
    ("GET", "/api/v1/security/password-policy", None, "security_admin"),
    ("GET", "/api/v1/audit", None, "audit_admin"),
]

#: Casework that no administrator may do (center staff may).
CASEWORK = [
    ("GET", "/api/v1/leads", None),
    ("POST", "/api/v1/leads", {"channel": "hotline", "name": "王某", "summary": "来电"}),
    ("GET", "/api/v1/applications", None),
    ("GET", "/api/v1/dispatches", None),
    ("GET", "/api/v1/reports/monthly?month=2026-11", None),
    ("GET", "/api/v1/visits", None),
]


@pytest.mark.parametrize(("method", "path", "body", "owner"), ADMIN_WORK)
@pytest.mark.parametrize("role", [*ADMINS, "center_staff"])
def test_each_administrator_does_only_their_own_work(
    client, staff_login, method, path, body, owner, role
):
    login = staff_login(role=role)
    resp = client.open(path, method=method, json=body, headers=login.headers)
    if role == owner:
        assert resp.status_code < 400, resp.get_json()
    else:
        assert resp.status_code == 403, resp.get_json()


@pytest.mark.parametrize(("method", "path", "body"), CASEWORK)
@pytest.mark.parametrize("role", ADMINS)
def test_no_administrator_does_casework(client, staff_login, method, path, body, role):
    login = staff_login(role=role)
    resp = client.open(path, method=method, json=body, headers=login.headers)
    assert resp.status_code == 403, resp.get_json()


@pytest.mark.parametrize(("method", "path", "body"), CASEWORK)
def test_center_staff_keep_their_casework(client, staff_login, method, path, body):
    login = staff_login(role="center_staff")
    resp = client.open(path, method=method, json=body, headers=login.headers)
    assert resp.status_code < 400, resp.get_json()
