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
from argon2 import PasswordHasher
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from server import create_app
from server.config import Config
from server.db import make_session_factory
from server.models import Base
from server.services.accounts import passwords

PG_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ENGINES = [e.strip() for e in os.environ.get("TEST_ENGINES", "sqlite,postgresql").split(",") if e]

from tests.builders import *  # noqa: E402,F403  (builder fixtures)
from tests.builders.applications import alice  # noqa: E402,F401  (fixture)
from tests.builders.dispatches import (  # noqa: E402,F401  (fixtures)
    center,
    chengdong,
    insurance,
    long_lived_tokens,  # not autouse: pytestmark = pytest.mark.usefixtures("long_lived_tokens")
)


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


#: argon2id at its lowest cost for tests: a production hash (RFC 9106's low-memory profile,
#: 64 MiB, three passes, four lanes) takes 0.2-0.4 s here, and a staff login makes one and checks
#: it, which was most of the suite's time. `production_passwords` restores the production hasher
#: for the tests that are about it (tests/test_auth.py proves its cost and that a cheaper hash is
#: upgraded at login; the unknown-name timing test in tests/test_login_rules.py runs on it).
TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PRODUCTION_HASHER = passwords.hasher


def _use_hasher(hasher: PasswordHasher) -> None:
    passwords.hasher = hasher
    passwords._dummy_hash.cache_clear()


@pytest.fixture(scope="session", autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    _use_hasher(TEST_HASHER)
    yield
    _use_hasher(PRODUCTION_HASHER)


@pytest.fixture
def production_passwords() -> Iterator[PasswordHasher]:
    """The production argon2id hasher for this test (see TEST_HASHER)."""
    _use_hasher(PRODUCTION_HASHER)
    yield PRODUCTION_HASHER
    _use_hasher(TEST_HASHER)


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
    # synchronous_commit off for this run's sessions only (not the server's setting): a commit
    # does not wait for its WAL to reach the disk, 10-30 ms a commit on this machine. What
    # other sessions see is unchanged; only a server crash could lose the last commits.
    options = f"-csearch_path={schema} -csynchronous_commit=off"
    url = make_url(PG_URL).update_query_dict({"options": options})
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


#: Every table, children before parents (so each can be emptied with a plain DELETE).
_TABLES = [t.name for t in reversed(Base.metadata.sorted_tables)]
#: One round trip naming the tables that hold any row.
_WITH_ROWS = text(
    " UNION ALL ".join(f"SELECT '{name}' WHERE EXISTS (SELECT 1 FROM {name})" for name in _TABLES)
)


def _reset(runtime) -> None:  # noqa: ANN001
    """Empty every table that holds a row, restart every identity, reseed the reference data.

    The same end state as `TRUNCATE <all tables> RESTART IDENTITY` followed by the seed, but
    only the tables a test wrote are touched: PostgreSQL's TRUNCATE makes new files for every
    table and index (63 tables: 0.25-1.5 s a test on this machine), while a DELETE of the few
    rows a test made costs a millisecond. Rows written by any connection, thread or child
    process are found, since the check reads the tables themselves."""
    from server.services.places.areas import seed_reference

    engine = runtime.engine
    with engine.begin() as conn:
        postgresql = engine.dialect.name == "postgresql"
        for (name,) in conn.execute(_WITH_ROWS).all():
            if postgresql and name == "audit_entries":
                # Its trigger refuses deletes (server/models/audit.py): off for this transaction
                # only (ALTER TABLE is transactional; TRUNCATE would make new files again).
                conn.execute(text("ALTER TABLE audit_entries DISABLE TRIGGER USER"))
                conn.execute(text("DELETE FROM audit_entries"))
                conn.execute(text("ALTER TABLE audit_entries ENABLE TRIGGER USER"))
            else:
                conn.execute(text(f"DELETE FROM {name}"))
        if postgresql:
            # A sequence also advances for rows rolled back, so restart every one that was used.
            # (pg_class, not the pg_sequences view: 3 ms instead of 15-30.)
            conn.execute(
                text(
                    "WITH s AS MATERIALIZED (SELECT oid FROM pg_class WHERE relkind = 'S'"
                    " AND relnamespace = current_schema()::regnamespace)"
                    " SELECT setval(oid, 1, false) FROM s"
                    " WHERE pg_sequence_last_value(oid) IS NOT NULL"
                )
            )
        elif _has_sequence(conn):
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
