"""Builders for ledgers (分类台帐): a household recorded by a visit some days from today."""

from __future__ import annotations

from datetime import timedelta

from server import clock
from tests.builders import make_id_number
from tests.builders.visits import record

TODAY = clock.today()


def days(n: int) -> str:
    return (TODAY + timedelta(days=n)).isoformat()


def household(client, login, name: str, *, visited: int, next_in: int, **overrides):
    """Record a visit `visited` days from today, next due `next_in` days from today."""
    resp = record(
        client,
        login,
        head={"name": name, "id_number": make_id_number()},
        visited_on=days(visited),
        next_visit_on=days(next_in),
        **overrides,
    )
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()
