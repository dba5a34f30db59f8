"""Staff login rules (等保 level 3): throttling behind a proxy, exact counting of simultaneous
guesses, names that cannot be told apart, password rules, forced changes, lockout and unlock,
and the sliding idle timeout of staff tokens."""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from server import clock, create_app
from server.models import AuditEntry, AuthToken, LoginThrottle, User
from tests.builders import error_code

PASSWORD = "correct-horse-9"


def login(client: Any, username: str, password: str = PASSWORD, **headers: str) -> Any:
    return client.post(
        "/api/v1/auth/staff-login",
        json={"username": username, "password": password},
        headers=headers,
    )


@pytest.fixture
def app_with(config) -> Iterator[Callable[..., Any]]:  # noqa: ANN001
    """Another app on the same database with some settings changed."""
    made = []

    def build(**overrides: Any) -> Any:
        app = create_app(config.with_overrides(**overrides))
        made.append(app)
        return app

    yield build
    for app in made:
        app.extensions["e_rescue"].dispose()


# --- throttling -------------------------------------------------------------------------------


def test_an_address_over_its_limit_is_slowed_down_but_a_right_password_still_logs_in(
    app_with, staff_login, monkeypatch
):
    staff_login(username="office1")
    client = app_with(login_ip_max_failures=3, login_ip_slowdown_seconds=0.6).test_client()
    slept: list[float] = []
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda s: (slept.append(s), real_sleep(s)))
    for i in range(3):
        assert error_code(login(client, f"ghost{i}", "wrong")) == "bad_credentials"
    assert slept == []
    started = time.monotonic()
    assert error_code(login(client, "ghost9", "wrong")) == "bad_credentials"
    assert time.monotonic() - started >= 0.6 and slept == [0.6]
    assert login(client, "office1").status_code == 200
    assert slept == [0.6]  # not slowed


def test_behind_a_trusted_proxy_each_forwarded_address_is_counted_apart(app_with, staff_login, db):
    staff_login(username="office2")
    client = app_with(proxy_hops=1).test_client()
    login(client, "office2", "wrong", **{"X-Forwarded-For": "10.1.1.1"})
    login(client, "office2", "wrong", **{"X-Forwarded-For": "203.0.113.9, 10.1.1.2"})
    keys = set(db.scalars(select(LoginThrottle.key).where(LoginThrottle.key.like("ip:%"))))
    assert keys == {"ip:10.1.1.1", "ip:10.1.1.2"}  # the proxy's own entry, not the forged one
    audited = db.scalars(select(AuditEntry.ip).where(AuditEntry.action == "login.failed"))
    assert sorted(audited) == ["10.1.1.1", "10.1.1.2"]


def test_without_trusted_proxies_a_forwarded_address_is_ignored(client, staff_login, db):
    staff_login(username="office3")
    login(client, "office3", "wrong", **{"X-Forwarded-For": "10.9.9.9"})
    keys = set(db.scalars(select(LoginThrottle.key).where(LoginThrottle.key.like("ip:%"))))
    assert keys == {"ip:127.0.0.1"}


def test_simultaneous_wrong_passwords_are_counted_exactly(app, staff_login, runtime, db):
    """40 guesses at once: exactly `LOGIN_MAX_FAILURES` passwords are checked, the others are
    refused as locked, none answers 500."""
    staff_login(username="target1")
    guesses = 40
    barrier = threading.Barrier(guesses, timeout=30)
    answers: list[tuple[int, str]] = []

    def guess(i: int) -> None:
        client = app.test_client()
        barrier.wait()
        resp = login(client, "target1", f"guess-{i}")
        answers.append((resp.status_code, resp.get_json().get("code")))

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(guesses)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    limit = runtime.config.login_max_failures
    assert Counter(answers) == {(401, "bad_credentials"): limit, (429, "login_locked"): 40 - limit}
    checked = db.scalar(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "login.failed")
    )
    assert checked == limit
    assert login(app.test_client(), "target1").status_code == 429  # locked, right password too


def test_a_name_nobody_has_takes_as_long_as_a_real_one(
    client, staff_login, runtime, monkeypatch, production_passwords
):
    staff_login(username="real1")
    monkeypatch.setattr(runtime, "config", runtime.config.with_overrides(login_max_failures=50))

    def median_failure(username: str) -> float:
        times = []
        for _ in range(7):
            started = time.perf_counter()
            assert error_code(login(client, username, "wrong")) == "bad_credentials"
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    known, unknown = median_failure("real1"), median_failure("nobody-here")
    assert 0.6 < unknown / known < 1.6, (known, unknown)


def test_a_name_nobody_has_is_locked_like_a_real_one(client, runtime):
    for _ in range(runtime.config.login_max_failures):
        assert error_code(login(client, "nobody2", "wrong")) == "bad_credentials"
    assert error_code(login(client, "nobody2", "wrong")) == "login_locked"


# --- lockout and unlock -----------------------------------------------------------------------


def lock(client: Any, username: str, runtime: Any) -> None:
    for _ in range(runtime.config.login_max_failures):
        login(client, username, "wrong")


def test_an_account_locked_after_5_failures_stays_locked_for_15_minutes(
    client, staff_login, runtime, monkeypatch
):
    staff_login(username="locked1")
    lock(client, "locked1", runtime)
    resp = login(client, "locked1")
    assert resp.status_code == 429 and "15 分钟" in resp.get_json()["message"]
    later = clock.now() + timedelta(seconds=runtime.config.login_lock_seconds - 30)
    monkeypatch.setattr(clock, "now", lambda: later)
    assert error_code(login(client, "locked1")) == "login_locked"
    after = later + timedelta(seconds=31)
    monkeypatch.setattr(clock, "now", lambda: after)
    assert login(client, "locked1").status_code == 200


def test_a_security_administrator_unlocks_an_account(client, staff_login, runtime, db):
    staff = staff_login(username="locked2")
    security = staff_login(role="security_admin")
    lock(client, "locked2", runtime)
    listed = client.get("/api/v1/security/locked-accounts", headers=security.headers).get_json()
    assert [(a["username"], a["failures"]) for a in listed] == [("locked2", 5)]
    resp = client.post(f"/api/v1/staff/{staff.user_id}/unlock", headers=security.headers)
    assert resp.status_code == 200
    assert login(client, "locked2").status_code == 200
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "account.unlocked"))
    assert entry.actor_id == security.user_id and entry.detail["was_locked"] is True


@pytest.mark.parametrize("role", ["system_admin", "audit_admin", "center_staff"])
def test_only_the_security_administrator_unlocks(client, staff_login, role):
    staff = staff_login(username=f"locked-{role}")
    other = staff_login(role=role)
    resp = client.post(f"/api/v1/staff/{staff.user_id}/unlock", headers=other.headers)
    assert resp.status_code == 403
    resp = client.get("/api/v1/security/locked-accounts", headers=other.headers)
    assert resp.status_code == 403


def test_a_right_password_clears_the_failures_but_not_the_address_count(client, staff_login, db):
    staff_login(username="clear1")
    login(client, "clear1", "wrong")
    assert login(client, "clear1").status_code == 200
    assert db.get(LoginThrottle, "user:clear1") is None
    assert db.get(LoginThrottle, "ip:127.0.0.1").failures == 1


# --- passwords --------------------------------------------------------------------------------


def change(client: Any, username: str, password: str, new_password: str) -> Any:
    return client.post(
        "/api/v1/auth/staff-password",
        json={"username": username, "password": password, "new_password": new_password},
    )


@pytest.mark.parametrize(
    ("new_password", "problem"),
    [
        ("Ab1-xyz", "至少 8 位"),
        ("abcdefgh12", "至少 3 种"),
        ("ABCDEFGH!!", "至少 3 种"),
        ("Pw-rule1-User", "用户名"),
        (PASSWORD, "最近 5 次"),
    ],
)
def test_a_new_password_must_follow_the_rules(client, staff_login, new_password, problem):
    staff_login(username="rule1", password=PASSWORD)
    resp = change(client, "rule1", PASSWORD, new_password)
    assert resp.status_code == 422 and error_code(resp) == "password_policy"
    assert any(problem in p for p in resp.get_json()["errors"]["password"])


def test_none_of_the_last_5_passwords_can_be_chosen_again(client, staff_login):
    staff_login(username="hist1", password="First-pass-0")
    current = "First-pass-0"
    for i in range(1, 6):
        assert change(client, "hist1", current, f"Next-pass-{i}").status_code == 200
        current = f"Next-pass-{i}"
    assert error_code(change(client, "hist1", current, "Next-pass-1")) == "password_policy"
    assert change(client, "hist1", current, "First-pass-0").status_code == 200  # 6th back


def test_a_new_account_must_change_its_password_at_first_login(client, staff_login):
    system = staff_login(role="system_admin")
    created = client.post(
        "/api/v1/staff",
        json={"username": "newbie1", "password": "Handed-out-1", "role": "leader"},
        headers=system.headers,
    )
    assert created.status_code == 201, created.get_json()
    resp = login(client, "newbie1", "Handed-out-1")
    assert resp.status_code == 403 and error_code(resp) == "password_change_required"
    assert "token" not in resp.get_json()
    resp = change(client, "newbie1", "Handed-out-1", "Chosen-by-me-2")
    assert resp.status_code == 200 and resp.get_json()["token"]
    assert login(client, "newbie1", "Chosen-by-me-2").status_code == 200


def test_a_password_older_than_90_days_must_be_changed(client, staff_login, db):
    staff_login(username="old1")
    user = db.scalar(select(User).where(User.username == "old1"))
    user.password_changed_at = clock.now() - timedelta(days=90, minutes=1)
    db.commit()
    resp = login(client, "old1")
    assert error_code(resp) == "password_change_required" and "90 天" in resp.get_json()["message"]
    assert change(client, "old1", PASSWORD, "Fresh-pass-90").status_code == 200


def test_a_password_change_checks_the_current_password_like_a_login(client, staff_login):
    staff_login(username="chg1")
    resp = change(client, "chg1", "wrong", "Fresh-pass-91")
    assert resp.status_code == 401 and error_code(resp) == "bad_credentials"


# --- idle timeout -----------------------------------------------------------------------------


def age_tokens(db: Any, user_id: int, idle: timedelta) -> None:
    for token in db.scalars(select(AuthToken).where(AuthToken.user_id == user_id)):
        token.last_seen_at = clock.now() - idle
    db.commit()


def last_seen(db: Any, user_id: int) -> Any:
    db.expire_all()
    return db.scalar(select(AuthToken.last_seen_at).where(AuthToken.user_id == user_id))


def test_a_staff_token_unused_for_30_minutes_expires(client, staff_login, db, runtime):
    staff = staff_login()
    age_tokens(db, staff.user_id, timedelta(seconds=runtime.config.staff_idle_timeout + 1))
    resp = client.get("/api/v1/me", headers=staff.headers)
    assert resp.status_code == 401 and error_code(resp) == "token_idle"


def test_using_a_staff_token_keeps_it_alive(client, staff_login, db):
    staff = staff_login()
    age_tokens(db, staff.user_id, timedelta(minutes=29))
    assert client.get("/api/v1/leads", headers=staff.headers).status_code == 200  # read-only view
    assert clock.now() - last_seen(db, staff.user_id) < timedelta(seconds=5)


def test_a_token_used_again_within_a_minute_is_not_written(client, staff_login, db):
    staff = staff_login()
    age_tokens(db, staff.user_id, timedelta(seconds=30))
    before = last_seen(db, staff.user_id)
    assert client.get("/api/v1/me", headers=staff.headers).status_code == 200
    assert last_seen(db, staff.user_id) == before


def test_resident_tokens_have_no_idle_timeout(client, resident_login, db):
    resident = resident_login("idle")
    age_tokens(db, resident.user_id, timedelta(days=3))
    assert client.get("/api/v1/me", headers=resident.headers).status_code == 200
