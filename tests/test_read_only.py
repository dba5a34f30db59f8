"""Hot read-only views run without a transaction, and such a session can never write."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from server.db import ReadOnlySessionWrote
from server.models import Town


def test_a_read_only_session_refuses_to_write(runtime, db):
    before = db.scalar(select(func.count()).select_from(Town))
    session = runtime.read_session_factory()
    try:
        session.add(Town(code="nowhere", name="无此镇"))
        with pytest.raises(ReadOnlySessionWrote):
            session.flush()
    finally:
        session.rollback()
        session.close()
    assert db.scalar(select(func.count()).select_from(Town)) == before


def test_the_queue_reads_what_was_just_committed(client, staff_login):
    center = staff_login()
    report = {
        "channel": "hotline",
        "name": "章三",
        "summary": "邻居反映老人独居",
        "town": "chengdong",
        "categories": ["illness"],
    }
    lead = client.post("/api/v1/leads", json=report, headers=center.headers).get_json()["lead"]
    page = client.get("/api/v1/leads", headers=center.headers).get_json()
    assert [item["id"] for item in page["items"]] == [lead["id"]]


def test_a_precompiled_statement_gives_what_core_gives(runtime, db, staff_login):
    """Bound values and result columns pass through the same type processors (enum, aware
    datetimes, booleans) as a Core execution of the statement."""
    from sqlalchemy import bindparam

    from server.db import Precompiled
    from server.models import AuthToken, User

    staff_login()
    statement = (
        select(User.role, User.is_active, AuthToken.expires_at)
        .join(AuthToken, AuthToken.user_id == User.id)
        .where(User.role == bindparam("role", type_=User.role.type))
    )
    role = db.scalar(select(User.role).limit(1))
    conn = db.connection()
    core = [tuple(row) for row in conn.execute(statement, {"role": role})]
    assert core
    assert Precompiled(statement).rows(conn, {"role": role}) == core


def test_a_dropped_connection_on_the_queue_fails_one_request_with_503(
    client, runtime, database_url, engine_name, staff_login
):
    """The queue's precompiled statements hand driver errors to SQLAlchemy, which invalidates
    the pool: one 503, then the retry succeeds."""
    if engine_name != "postgresql":
        pytest.skip("only a database server can drop a pooled connection")
    from sqlalchemy import create_engine, text

    center = staff_login()
    runtime.read_engine.dispose()
    assert client.get("/api/v1/leads", headers=center.headers).status_code == 200
    with runtime.read_engine.connect() as conn:  # the read pool's only connection
        pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
    admin = create_engine(database_url)
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    dropped = client.get("/api/v1/leads", headers=center.headers)
    assert dropped.status_code == 503
    assert dropped.get_json()["code"] == "unavailable"
    assert client.get("/api/v1/leads", headers=center.headers).status_code == 200
