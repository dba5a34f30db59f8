"""Logging in to the console with the Flask test client (a cookie jar per client)."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "page has no CSRF field"
    return found.group(1)


def console_login(client: FlaskClient, username: str, password: str) -> str:
    """Log in through the login form; returns the session's CSRF token."""
    page = client.get("/console/login")
    token = csrf_of(page.get_data(as_text=True))
    resp = client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": token},
    )
    assert resp.status_code == 303, resp.get_data(as_text=True)[:2000]
    home = client.get("/console/")
    assert home.status_code == 200
    return csrf_of(home.get_data(as_text=True))


def post(client: FlaskClient, path: str, csrf: str, **data: Any) -> Any:
    return client.post(path, data={"csrf_token": csrf, **data})
