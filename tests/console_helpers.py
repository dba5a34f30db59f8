"""Logging in to the console with the Flask test client (a cookie jar per client)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
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
    home = client.get("/console/", follow_redirects=True)  # an administrator: to their room
    assert home.status_code == 200
    return csrf_of(home.get_data(as_text=True))


def post(client: FlaskClient, path: str, csrf: str, **data: Any) -> Any:
    return client.post(path, data={"csrf_token": csrf, **data})


class _Figures(HTMLParser):
    """The console's chart tables and SVG bars, read from a page's HTML."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, dict[str, dict[str, str]]] = {}
        self.bars: dict[str, dict[tuple[str, str], int]] = {}
        self._chart: str | None = None
        self._svg: str | None = None
        self._header: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self._in_head = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("data-chart"):
            self._chart = a["data-chart"]
            self.tables[self._chart] = {}
            self._header = []
        elif tag == "svg" and a.get("data-chart"):
            self._svg = a["data-chart"]
            self.bars.setdefault(self._svg, {})
        elif tag == "rect" and self._svg and a.get("data-value") is not None:
            key = (a.get("data-series") or "", a.get("data-category") or "")
            self.bars[self._svg][key] = int(a["data-value"] or 0)
        elif self._chart and tag == "thead":
            self._in_head = True
        elif self._chart and tag == "tr":
            self._row = []
        elif self._chart and tag in ("th", "td") and self._row is not None:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "svg":
            self._svg = None
        elif self._chart is None:
            return
        elif tag in ("th", "td") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if self._in_head:
                self._header = self._row
            elif len(self._row) == len(self._header):
                self.tables[self._chart][self._row[0]] = dict(
                    zip(self._header, self._row, strict=True)
                )
            self._row = None
        elif tag == "thead":
            self._in_head = False
        elif tag == "table":
            self._chart = None


def chart_figures(html: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tables, bars): tables[chart][row label][column] = cell text;
    bars[chart][(series, category)] = the bar's figure."""
    parser = _Figures()
    parser.feed(html)
    return parser.tables, parser.bars
