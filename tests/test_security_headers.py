"""Security headers on every answer (server/headers.py): CSP without inline script or style,
nosniff, no framing, no referrer, HSTS over HTTPS, no-store wherever personal data may be,
and `Allow` on a 405."""

from __future__ import annotations

import pytest

from server.headers import CSP


def _hardened(resp) -> None:  # noqa: ANN001
    assert resp.headers["Content-Security-Policy"] == CSP
    assert "'unsafe-inline'" not in CSP and "frame-ancestors 'none'" in CSP
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Frame-Options"] == "DENY"
    assert resp.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize(
    "path", ["/api/v1/me", "/api/v1/leads", "/api/v1/applications", "/api/v1/leads/999"]
)
def test_api_answers_with_personal_data_are_hardened_and_never_stored(client, staff_login, path):
    resp = client.get(path, headers=staff_login().headers)
    _hardened(resp)
    assert "no-store" in resp.headers["Cache-Control"]


def test_an_unauthenticated_error_is_hardened_too(client):
    resp = client.get("/api/v1/me")
    assert resp.status_code == 401
    _hardened(resp)
    assert resp.headers["Cache-Control"] == "no-store"


def test_console_pages_are_hardened_and_never_stored(client):
    resp = client.get("/console/login")
    assert resp.status_code == 200
    _hardened(resp)
    assert resp.headers["Cache-Control"] == "no-store"


def test_console_assets_keep_their_own_caching(client):
    resp = client.get("/console/static/console/console.css")
    assert resp.status_code == 200
    assert "no-store" not in resp.headers.get("Cache-Control", "")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"


def test_hsts_is_sent_over_https_only(client):
    assert "Strict-Transport-Security" not in client.get("/healthz").headers
    secure = client.get("/healthz", base_url="https://e-rescue.example")
    assert secure.headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_a_405_names_the_allowed_methods(client, staff_login):
    resp = client.delete("/api/v1/me", headers=staff_login().headers)
    assert resp.status_code == 405
    assert resp.get_json()["code"] == "method_not_allowed"
    allowed = {m.strip() for m in resp.headers["Allow"].split(",")}
    assert "GET" in allowed and "DELETE" not in allowed


def test_only_the_api_docs_page_may_run_its_inline_script(client):
    resp = client.get("/api/docs")
    assert resp.status_code == 200
    assert "'unsafe-inline'" in resp.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
