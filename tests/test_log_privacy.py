"""A database error is logged with its statement but without its bound values: no name, ID
number, phone, address or sealed value reaches the log (engines use `hide_parameters`)."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from tests.builders import make_id_number

NAME = "隐私测试人"
PHONE = "13912345678"
ADDRESS = "博山区隐私路9号"
#: A sealed value (`kid:base64`) or a lookup hash (64 hex digits) as they would be bound.
SEALED = re.compile(r"\bk1:[A-Za-z0-9_-]{16,}|\b[0-9a-f]{64}\b")


@pytest.fixture
def failing_lead_insert(runtime, engine_name) -> Iterator[None]:
    """Every INSERT into leads fails inside the database, after its values are bound."""
    with runtime.engine.begin() as conn:
        if engine_name == "postgresql":
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_lead() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'refused by test trigger'; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_lead BEFORE INSERT ON leads "
                    "FOR EACH ROW EXECUTE FUNCTION refuse_lead()"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_lead BEFORE INSERT ON leads "
                    "BEGIN SELECT RAISE(ABORT, 'refused by test trigger'); END"
                )
            )
    yield
    with runtime.engine.begin() as conn:
        conn.execute(
            text("DROP TRIGGER refuse_lead" + (" ON leads" if engine_name == "postgresql" else ""))
        )
        if engine_name == "postgresql":
            conn.execute(text("DROP FUNCTION refuse_lead()"))


@pytest.fixture
def log_output() -> Iterator[io.StringIO]:
    """Everything the app and SQLAlchemy log, tracebacks included, as an operator sees it."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    loggers = [logging.getLogger(n) for n in ("server", "sqlalchemy", "")]
    for logger in loggers:
        logger.addHandler(handler)
    yield out
    for logger in loggers:
        logger.removeHandler(handler)


def test_a_database_error_logs_no_personal_data(
    client, staff_login, failing_lead_insert, log_output
):
    id_number = make_id_number()
    body = {
        "channel": "hotline",
        "name": NAME,
        "id_number": id_number,
        "phone": PHONE,
        "address": ADDRESS,
        "summary": "邻居反映老人独居",
        "town": "chengdong",
    }
    resp = client.post("/api/v1/leads", headers=staff_login().headers, json=body)
    assert resp.status_code == 500
    assert resp.get_json()["code"] == "internal_error"
    logged = log_output.getvalue()
    assert "refused by test trigger" in logged  # the error and its traceback were logged
    assert "INSERT INTO leads" in logged
    for secret in (NAME, id_number, PHONE, ADDRESS, id_number[-4:] + "'"):
        assert secret not in logged
    assert not SEALED.search(logged), SEALED.search(logged)
    assert "hidden due to hide_parameters" in logged
