"""Every endpoint declares who may call it; everyone else gets 401 or 403."""

from __future__ import annotations

import pytest

from tests.builders import error_code

ALL = [
    "resident",
    "helper",
    "town_staff",
    "department_staff",
    "center_staff",
    "leader",
    "system_admin",
    "security_admin",
    "audit_admin",
]

#: (method, path, body, roles allowed)
ENDPOINTS = [
    ("GET", "/api/v1/me", None, ALL),
    ("GET", "/api/v1/areas", None, ALL),
    ("POST", "/api/v1/auth/logout", None, ALL),
    ("GET", "/api/v1/staff", None, ["system_admin"]),
    (
        "POST",
        "/api/v1/staff",
        {"username": "newbie", "password": "long-enough-1", "role": "leader"},
        ["system_admin"],
    ),
    (
        "POST",
        "/api/v1/villages",
        {"town": "chengdong", "code": "v1", "name": "测试村"},
        ["center_staff", "town_staff"],
    ),
]


def _login(role, staff_login, resident_login, db):
    if role == "resident":
        return resident_login("rita")
    if role == "helper":
        from sqlalchemy import select

        from server.models import Role, User, Village

        login = resident_login("hank")
        village = db.scalar(select(Village)) or _village(db)
        user = db.get(User, login.user_id)
        user.role, user.village_id = Role.HELPER, village.id
        db.commit()
        return login
    return staff_login(role=role)


def _village(db):
    from server.models import Village

    village = Village(code="acc-v1", name="访问测试村", town_id=1)
    db.add(village)
    db.commit()
    return village


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ENDPOINTS)
def test_no_token_is_401(client, method, path, body, allowed):
    resp = client.open(path, method=method, json=body)
    assert resp.status_code == 401
    assert error_code(resp) == "unauthorized"


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ENDPOINTS)
@pytest.mark.parametrize("role", ALL)
def test_each_role_is_allowed_or_refused_as_declared(
    client, staff_login, resident_login, db, method, path, body, allowed, role
):
    login = _login(role, staff_login, resident_login, db)
    resp = client.open(path, method=method, json=body, headers=login.headers)
    if role in allowed:
        assert resp.status_code < 400, resp.get_json()
    else:
        assert resp.status_code == 403, resp.get_json()
        assert error_code(resp) == "forbidden"


def test_a_garbage_token_is_401(client):
    resp = client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-real-token"})
    assert resp.status_code == 401


def test_every_documented_endpoint_declares_its_roles(client):
    """A new endpoint without `requires(...)` or `public` fails here."""
    spec = client.get("/api/openapi.json").get_json()
    public = {"/healthz", "/readyz", "/api/v1/auth/wechat-login", "/api/v1/auth/staff-login"}
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if method == "parameters":  # path-level parameters (e.g. {photo_id}), not an operation
                continue
            if path in public or op.get("x-public"):
                continue
            assert "x-roles" in op, f"{method.upper()} {path} declares no roles"
            assert op.get("security") == [{"bearerAuth": []}]


def test_town_staff_cannot_add_a_village_to_another_town(client, staff_login):
    login = staff_login(role="town_staff", town="chengdong")
    resp = client.post(
        "/api/v1/villages",
        headers=login.headers,
        json={"town": "baita", "code": "x1", "name": "别镇村"},
    )
    assert resp.status_code == 403
