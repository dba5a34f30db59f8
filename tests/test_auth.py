"""Logging in: WeChat for residents, passwords for staff; tokens expire and can be revoked."""

from __future__ import annotations

from datetime import timedelta

import pytest
from argon2 import extract_parameters
from sqlalchemy import select

from server.models import AuthToken, User
from tests.builders import error_code


def test_wechat_login_creates_resident_and_returns_opaque_token(client, fake_wechat):
    resp = client.post("/api/v1/auth/wechat-login", json={"code": "user-alice-1"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["user"]["role"] == "resident"
    assert len(body["token"]) >= 40
    assert "session_key" not in resp.get_data(as_text=True)
    assert "openid" not in body["user"]


def test_second_login_finds_the_same_resident(client):
    first = client.post("/api/v1/auth/wechat-login", json={"code": "user-bob-1"}).get_json()
    second = client.post("/api/v1/auth/wechat-login", json={"code": "user-bob-2"}).get_json()
    assert first["user"]["id"] == second["user"]["id"]
    assert first["token"] != second["token"]


def test_unionid_is_kept_when_wechat_gives_one(client, db):
    client.post("/api/v1/auth/wechat-login", json={"code": "user-una-1"})
    user = db.scalar(select(User))
    assert user.unionid


def test_session_key_is_stored_encrypted(client, db, runtime):
    client.post("/api/v1/auth/wechat-login", json={"code": "user-carol-1"})
    user = db.scalar(select(User))
    assert user.session_key_enc.startswith("k1:")
    assert runtime.pii.open(user.session_key_enc)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("bad-code", 400, "wechat_code_invalid"),
        ("limit-dave", 429, "wechat_rate_limited"),
        ("risky-dave", 403, "wechat_risky_user"),
        ("busy-dave", 503, "wechat_busy"),
    ],
)
def test_each_wechat_login_error_has_its_own_code(client, code, status, expected):
    resp = client.post("/api/v1/auth/wechat-login", json={"code": code})
    assert resp.status_code == status
    assert error_code(resp) == expected
    assert resp.get_json()["message"]


def test_a_used_code_is_refused(client):
    assert client.post("/api/v1/auth/wechat-login", json={"code": "user-eve-1"}).status_code == 200
    resp = client.post("/api/v1/auth/wechat-login", json={"code": "user-eve-1"})
    assert error_code(resp) == "wechat_code_used"


def test_wechat_unreachable_is_a_clear_503(app, client, fake_wechat):
    fake_wechat.add_fault(path="sns/jscode2session", http_status=502, times=1)
    resp = client.post("/api/v1/auth/wechat-login", json={"code": "user-fay-1"})
    assert resp.status_code == 503
    assert error_code(resp) == "wechat_unreachable"


def test_logout_revokes_the_token(client, resident_login):
    login = resident_login("gus")
    assert client.get("/api/v1/me", headers=login.headers).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=login.headers).status_code == 200
    resp = client.get("/api/v1/me", headers=login.headers)
    assert resp.status_code == 401
    assert error_code(resp) == "token_invalid"


def test_expired_token_is_refused(client, resident_login, db):
    login = resident_login("hal")
    row = db.scalar(select(AuthToken))
    row.expires_at = row.created_at - timedelta(seconds=1)
    db.commit()
    resp = client.get("/api/v1/me", headers=login.headers)
    assert resp.status_code == 401
    assert error_code(resp) == "token_expired"


def test_tokens_are_stored_only_as_hashes(client, resident_login, db):
    login = resident_login("ida")
    stored = db.scalars(select(AuthToken.token_hash)).all()
    assert login.token not in stored
    assert all(len(h) == 64 for h in stored)


def test_staff_login_with_right_password(client, staff_login):
    login = staff_login(role="town_staff", town="baita")
    me = client.get("/api/v1/me", headers=login.headers).get_json()
    assert me["role"] == "town_staff"
    assert me["town"]["code"] == "baita"


def test_staff_login_wrong_password_is_401(client, staff_login):
    staff_login(username="jack1", password="correct-horse-9")
    resp = client.post(
        "/api/v1/auth/staff-login", json={"username": "jack1", "password": "wrong-password"}
    )
    assert resp.status_code == 401
    assert error_code(resp) == "bad_credentials"


def test_repeated_failures_lock_the_account(client, staff_login, runtime):
    staff_login(username="kate1", password="correct-horse-9")
    for _ in range(runtime.config.login_max_failures):
        client.post("/api/v1/auth/staff-login", json={"username": "kate1", "password": "nope"})
    resp = client.post(
        "/api/v1/auth/staff-login", json={"username": "kate1", "password": "correct-horse-9"}
    )
    assert resp.status_code == 429
    assert error_code(resp) == "login_locked"


def test_passwords_are_hashed_with_argon2(staff_login, db, production_passwords):
    staff_login(username="mia1", password="correct-horse-9")
    user = db.scalar(select(User).where(User.username == "mia1"))
    assert user.password_hash.startswith("$argon2id$")
    # Production's cost (the other tests hash at the lowest cost: tests/conftest.py).
    assert user.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert production_passwords.verify(user.password_hash, "correct-horse-9")


def test_production_hashes_at_rfc_9106_cost_and_upgrades_a_cheaper_hash_at_login(
    staff_login, client, db, production_passwords
):
    from argon2.profiles import RFC_9106_LOW_MEMORY

    from tests.conftest import TEST_HASHER

    assert extract_parameters(production_passwords.hash("x")) == RFC_9106_LOW_MEMORY
    cheap = TEST_HASHER.hash("correct-horse-9")
    staff_login(username="noa1", password="correct-horse-9")
    user = db.scalar(select(User).where(User.username == "noa1"))
    user.password_hash = cheap
    db.commit()
    resp = client.post(
        "/api/v1/auth/staff-login", json={"username": "noa1", "password": "correct-horse-9"}
    )
    assert resp.status_code == 200
    db.expire_all()
    upgraded = db.scalar(select(User).where(User.username == "noa1")).password_hash
    assert upgraded != cheap
    assert extract_parameters(upgraded) == RFC_9106_LOW_MEMORY
