"""Test fixtures: a real database per engine (SQLite always, PostgreSQL when reachable), the real
app, and the fake WeChat server on loopback.

Every run makes its own SQLite file and its own PostgreSQL schema and drops them at the end; each
test starts from empty tables plus the reference data. `REQUIRE_POSTGRES=1` turns an unreachable
PostgreSQL into a failure instead of a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from server import create_app
from server.config import Config
from server.db import make_session_factory
from server.models import Base

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ENGINES = [e.strip() for e in os.environ.get("TEST_ENGINES", "sqlite,postgresql").split(",") if e]

from tests.builders import *  # noqa: E402,F403  (builder fixtures)


def postgres_reachable() -> bool:
    try:
        engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:
        return False


def pytest_report_header(config: pytest.Config) -> list[str]:
    reachable = postgres_reachable()
    return [
        f"databases: sqlite, postgresql={'reachable' if reachable else 'NOT reachable'}"
        f" ({make_url(PG_URL).render_as_string(hide_password=True)})"
    ]


@pytest.fixture(scope="session")
def fake_wechat() -> Iterator[object]:
    from server.wechat.fake_server import FakeWeChatServer

    server = FakeWeChatServer(port=0)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=ENGINES)
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A fresh, empty database for this run: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        return
    if not postgres_reachable():
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"PostgreSQL is required (REQUIRE_POSTGRES=1) but unreachable at {PG_URL}")
        pytest.skip("PostgreSQL not reachable; set REQUIRE_POSTGRES=1 to make this a failure")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(scope="session")
def engine_name(database_url: str) -> str:
    return "postgresql" if database_url.startswith("postgresql") else "sqlite"


@pytest.fixture(scope="session")
def config(database_url: str, fake_wechat, tmp_path_factory: pytest.TempPathFactory) -> Config:  # noqa: ANN001
    return Config(
        env="test",
        database_url=database_url,
        upload_dir=str(tmp_path_factory.mktemp("uploads")),
        wechat_api_base=fake_wechat.url,
        wechat_timeout_connect=1.0,
        wechat_timeout_read=2.0,
        log_level="WARNING",
    )


@pytest.fixture(scope="session")
def app(config: Config):  # noqa: ANN201
    app = create_app(config)
    engine = app.extensions["e_rescue"].engine
    # Tests build the schema from the models; tests/test_migrations.py proves the migrations
    # produce the same schema on both engines.
    Base.metadata.create_all(engine)
    yield app
    app.extensions["e_rescue"].dispose()


@pytest.fixture(scope="session")
def runtime(app):  # noqa: ANN001, ANN201
    return app.extensions["e_rescue"]


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """Start each test that uses the app from empty tables plus reference data."""
    if "app" not in request.fixturenames:
        yield
        return
    runtime = request.getfixturevalue("runtime")
    _reset(runtime)
    fake = request.getfixturevalue("fake_wechat")
    fake.reset()
    # The fake forgot its tokens: drop the gateway's in-process token memo with it.
    runtime._gateway = None
    yield


def _reset(runtime) -> None:  # noqa: ANN001
    from server.services.places.areas import seed_reference

    engine = runtime.engine
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
            if _has_sequence(conn):
                conn.execute(text("DELETE FROM sqlite_sequence"))
    factory = make_session_factory(engine)
    with factory() as db:
        seed_reference(db)
        db.commit()


def _has_sequence(conn) -> bool:  # noqa: ANN001
    return bool(
        conn.execute(text("SELECT 1 FROM sqlite_master WHERE name='sqlite_sequence'")).first()
    )


@pytest.fixture
def client(app):  # noqa: ANN001, ANN201
    return app.test_client()


@pytest.fixture
def db(runtime):  # noqa: ANN001, ANN201
    """A session for arranging and checking data directly (commit what you arrange)."""
    with runtime.session_factory() as session:
        yield session
