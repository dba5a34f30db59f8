"""JSON logs (`LOG_FORMAT=json`): one object per line, each with its request's id, and no
personal data, not even in a database error's traceback."""

from __future__ import annotations

import io
import json
import logging

import pytest
from sqlalchemy import text

from server.config import Config
from server.logs import JsonFormatter, RequestIdFilter, configure, redact
from tests.builders import make_id_number


@pytest.fixture
def json_log():  # noqa: ANN201
    """What the app's loggers write, as JSON lines, for the length of a test."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("server")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_each_request_logs_one_json_line_with_its_request_id(client, json_log) -> None:
    resp = client.get("/api/v1/public/policies", headers={"X-Request-Id": "req-abcdef12"})
    assert resp.headers["X-Request-Id"] == "req-abcdef12"
    lines = [line for line in json_log() if line["logger"] == "server.request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["request_id"] == "req-abcdef12"
    assert line["route"] == "/api/v1/public/policies" and line["status"] == 200
    assert {"ts", "level", "message", "method", "ms"} <= set(line)


def test_no_personal_data_reaches_the_log_even_from_a_database_error(
    client, staff_login, runtime, json_log
) -> None:
    """A search by name and ID number, and a statement that fails with a name and an ID number
    among its values, logged with its traceback: the lines hold neither (query strings are not
    logged, engines hide parameters, ID- and mobile-shaped text is masked)."""
    center = staff_login(role="center_staff")
    id_number, name, phone = make_id_number(), "王秀英", "13912345678"
    client.get(f"/api/v1/leads?name={name}&q={id_number}", headers=center.headers)
    try:
        with runtime.engine.connect() as conn:
            conn.execute(
                text("INSERT INTO no_such_table (name, id_number) VALUES (:n, :i)"),
                {"n": name, "i": id_number},
            )
    except Exception:
        logging.getLogger("server.test").exception("insert failed for %s %s", phone, id_number)
    written = json.dumps(json_log(), ensure_ascii=False)
    assert "insert failed" in written and "no_such_table" in written
    for secret in (id_number, name, phone):
        assert secret not in written


def test_masking_covers_id_numbers_and_mobiles_in_any_text() -> None:
    assert redact("id 37030419800101123X tel 13812345678 order 123") == (
        "id [id-number] tel [phone] order 123"
    )


def test_log_format_json_is_chosen_from_the_environment() -> None:
    config = Config.from_env({"LOG_FORMAT": "json"}, dotenv=False)
    stream = io.StringIO()
    handler = configure(config.log_format, "INFO", logger="e_rescue.test_json", stream=stream)
    logging.getLogger("e_rescue.test_json").info("hello %s", "world")
    assert isinstance(handler.formatter, JsonFormatter)
    assert json.loads(stream.getvalue())["message"] == "hello world"
