"""One error shape for every failure: code, Chinese message, per-field errors, request id."""

from __future__ import annotations

import pytest


def _assert_shape(resp, status):
    assert resp.status_code == status
    assert resp.is_json
    body = resp.get_json()
    assert set(body) == {"code", "message", "errors", "request_id"}
    assert body["request_id"] == resp.headers["X-Request-Id"]
    return body


def test_unknown_path_is_json_404(client):
    body = _assert_shape(client.get("/no/such/page"), 404)
    assert body["code"] == "not_found"


def test_wrong_method_is_json_405(client):
    _assert_shape(client.delete("/api/v1/me"), 405)


def test_validation_errors_are_per_field_and_in_chinese(client):
    body = _assert_shape(client.post("/api/v1/auth/staff-login", json={"username": 5}), 422)
    assert body["errors"]["password"] == ["此项为必填项"]
    assert body["errors"]["username"] == ["应为文字"]


def test_too_large_body_is_json_413(client, runtime):
    big = b"x" * (runtime.config.max_upload_bytes + 128 * 1024)
    _assert_shape(
        client.post("/api/v1/auth/staff-login", data=big, content_type="application/json"), 413
    )


def test_unexpected_errors_are_json_500_without_a_trace(config):
    from server import create_app

    fresh = create_app(config)

    @fresh.get("/_test/boom")
    def boom():
        raise RuntimeError("secret detail")

    resp = fresh.test_client().get("/_test/boom")
    body = _assert_shape(resp, 500)
    assert "secret detail" not in resp.get_data(as_text=True)
    assert body["code"] == "internal_error"


def test_request_id_is_echoed_when_given(client):
    resp = client.get("/healthz", headers={"X-Request-Id": "abc12345-trace"})
    assert resp.headers["X-Request-Id"] == "abc12345-trace"


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").get_json() == {"status": "ready"}


def test_api_docs_are_served_from_the_installed_package(client):
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert b"/api/docs/assets/swagger-ui-bundle.js" in page.data
    assert client.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 200
    assert client.get("/api/openapi.json").get_json()["info"]["title"].startswith("博山e救助")


def test_a_connection_the_database_dropped_fails_one_request_with_503(
    client, runtime, database_url, engine_name
):
    if engine_name != "postgresql":
        pytest.skip("only a database server can drop a pooled connection")
    from sqlalchemy import create_engine, text

    runtime.engine.dispose()
    assert client.get("/api/v1/public/contacts").status_code == 200
    with runtime.engine.connect() as conn:  # the pool's only connection
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = create_engine(database_url)
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    dropped = client.get("/api/v1/public/contacts")
    assert dropped.status_code == 503
    assert dropped.get_json()["code"] == "unavailable"
    assert client.get("/api/v1/public/contacts").status_code == 200
