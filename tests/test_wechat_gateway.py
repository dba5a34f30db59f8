"""The real gateway (wechatpy) against the fake WeChat server over loopback HTTP."""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from server.clock import now as clock_now
from server.config import Config
from server.db import make_engine, make_session_factory
from server.models.wechat import WeChatAccessToken
from server.wechat import WeChatError, build_gateway
from server.wechat.fake_server import FakeWeChatServer
from server.wechat.fake_state import fake_openid
from server.wechat.gateway import WechatpyGateway
from server.wechat.tokens import DatabaseTokenStore, FetchedToken, RedisTokenStore, TokenStore

# The fixtures module sits next to this file; its import name depends on whether `tests` is a
# package.
_package = __name__.rpartition(".")[0]
pytest_plugins = [f"{_package}.wechat_fixtures" if _package else "wechat_fixtures"]

SUBSCRIBE = "cgi-bin/message/subscribe/send"
LOGIN = "sns/jscode2session"
PG_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def count(fake: FakeWeChatServer, path: str) -> int:
    return len(fake.state.list_calls(path))


def send_hello(gateway: WechatpyGateway, **overrides: object) -> None:
    message: dict[str, object] = {
        "openid": fake_openid("alice"),
        "template_id": "TPL-lead-accepted",
        "data": {"thing1": "低保申请已受理", "time2": "2026年11月28日 15:01"},
        "page": "pages/lead/detail?id=1",
    }
    message.update(overrides)
    gateway.send_subscribe_message(**message)  # type: ignore[arg-type]


# --- login -------------------------------------------------------------------------------------


def test_login_gives_a_stable_openid_and_a_fresh_session_key(
    wechat_gateway: WechatpyGateway,
) -> None:
    first = wechat_gateway.code_to_session("user-alice-1")
    second = wechat_gateway.code_to_session("user-alice-2")

    assert first.openid == second.openid == fake_openid("alice")
    assert first.session_key != second.session_key
    assert first.unionid is None
    assert "session_key" not in repr(first)


def test_login_of_a_unionid_user(wechat_gateway: WechatpyGateway) -> None:
    assert wechat_gateway.code_to_session("user-uma-1").unionid is not None


@pytest.mark.parametrize(
    ("code", "errcode", "retryable"),
    [
        ("bad-code", 40029, False),
        ("limit-alice-1", 45011, False),
        ("risky-alice-1", 40226, False),
        ("busy-alice-1", -1, True),
    ],
)
def test_login_errors(
    wechat_gateway: WechatpyGateway, code: str, errcode: int, retryable: bool
) -> None:
    with pytest.raises(WeChatError) as caught:
        wechat_gateway.code_to_session(code)

    assert caught.value.errcode == errcode
    assert caught.value.retryable is retryable
    assert caught.value.path == LOGIN


def test_a_used_code_is_refused(wechat_gateway: WechatpyGateway) -> None:
    wechat_gateway.code_to_session("user-bob-1")

    with pytest.raises(WeChatError) as caught:
        wechat_gateway.code_to_session("user-bob-1")

    assert caught.value.errcode == 40163


def test_rate_limit_from_the_fault_api(
    wechat_gateway: WechatpyGateway, wechat_fake: FakeWeChatServer
) -> None:
    wechat_fake.state.add_fault(LOGIN, errcode=45011, errmsg="api minute-quota reach limit")

    with pytest.raises(WeChatError) as caught:
        wechat_gateway.code_to_session("user-carol-1")

    assert caught.value.is_rate_limited and not caught.value.retryable
    assert count(wechat_fake, LOGIN) == 1  # no retry on a rate limit


def test_connection_refused_is_a_transport_error(
    refused_wechat_url: str, token_session_factory: sessionmaker[Session]
) -> None:
    config = Config(wechat_api_base=refused_wechat_url, wechat_timeout_connect=1.0)
    gateway = WechatpyGateway(config, DatabaseTokenStore(token_session_factory))

    with pytest.raises(WeChatError) as caught:
        gateway.code_to_session("user-alice-1")

    assert caught.value.errcode is None
    assert caught.value.retryable


def test_an_unreachable_token_store_is_a_transport_error(
    wechat_config: Config, refused_wechat_url: str
) -> None:
    redis_url = refused_wechat_url.replace("http://", "redis://") + "0"
    gateway = build_gateway(wechat_config.with_overrides(redis_url=redis_url))

    with pytest.raises(WeChatError) as caught:
        gateway.code_to_session("user-alice-1")

    assert caught.value.errcode is None and "token store" in caught.value.errmsg


def test_a_slow_answer_times_out(
    wechat_fake: FakeWeChatServer, token_session_factory: sessionmaker[Session]
) -> None:
    config = Config(wechat_api_base=wechat_fake.url, wechat_timeout_read=0.3)
    gateway = WechatpyGateway(config, DatabaseTokenStore(token_session_factory))
    wechat_fake.state.add_fault(LOGIN, delay=1.0)

    with pytest.raises(WeChatError) as caught:
        gateway.code_to_session("user-alice-1")

    assert caught.value.errcode is None
    assert "Timeout" in caught.value.errmsg


def test_http_error_status_and_bad_json_are_transport_errors(
    wechat_gateway: WechatpyGateway, wechat_fake: FakeWeChatServer
) -> None:
    wechat_fake.state.add_fault(LOGIN, http_status=502)
    with pytest.raises(WeChatError) as caught:
        wechat_gateway.code_to_session("user-alice-1")
    assert (caught.value.errcode, caught.value.http_status) == (None, 502)

    wechat_fake.state.add_fault(LOGIN, body="<html>gateway hiccup</html>")
    with pytest.raises(WeChatError) as caught:
        wechat_gateway.code_to_session("user-alice-2")
    assert caught.value.errcode is None


def test_token_endpoint_errors_surface(
    wechat_gateway: WechatpyGateway, wechat_fake: FakeWeChatServer
) -> None:
    wechat_fake.state.add_fault("cgi-bin/stable_token", errcode=40125, errmsg="invalid appsecret")

    with pytest.raises(WeChatError) as caught:
        wechat_gateway.code_to_session("user-alice-1")

    assert caught.value.errcode == 40125


# --- access tokens -----------------------------------------------------------------------------


def test_expired_token_is_refreshed_once_and_the_call_retried(
    wechat_gateway: WechatpyGateway, wechat_fake: FakeWeChatServer
) -> None:
    send_hello(wechat_gateway)
    wechat_fake.state.expire_tokens()

    send_hello(wechat_gateway)

    assert count(wechat_fake, "cgi-bin/stable_token") == 2
    assert count(wechat_fake, SUBSCRIBE) == 3


def test_two_token_errors_in_a_row_surface(
    wechat_gateway: WechatpyGateway, wechat_fake: FakeWeChatServer
) -> None:
    wechat_fake.state.add_fault(SUBSCRIBE, errcode=40001, errmsg="invalid credential", times=5)

    with pytest.raises(WeChatError) as caught:
        send_hello(wechat_gateway)

    assert caught.value.errcode == 40001 and caught.value.is_token_error
    assert count(wechat_fake, SUBSCRIBE) == 2  # one retry, never more


def test_a_rejected_token_handed_back_is_force_refreshed(
    wechat_gateway: WechatpyGateway, wechat_fake: FakeWeChatServer
) -> None:
    # WeChat rejects a token that stable_token still considers current.
    wechat_fake.state.add_fault(SUBSCRIBE, errcode=42001, errmsg="access_token expired")

    send_hello(wechat_gateway)

    fetches = wechat_fake.state.list_calls("cgi-bin/stable_token")
    assert [call["json"]["force_refresh"] for call in fetches] == [False, False, True]
    used = [call["query"]["access_token"] for call in wechat_fake.state.list_calls(SUBSCRIBE)]
    assert len(used) == 2 and used[0] != used[1]


def test_gateways_sharing_a_store_fetch_the_token_once(
    wechat_config: Config,
    token_session_factory: sessionmaker[Session],
    wechat_fake: FakeWeChatServer,
) -> None:
    first = WechatpyGateway(wechat_config, DatabaseTokenStore(token_session_factory))
    second = WechatpyGateway(wechat_config, DatabaseTokenStore(token_session_factory))

    first.code_to_session("user-alice-1")
    second.code_to_session("user-alice-2")
    send_hello(second)

    assert count(wechat_fake, "cgi-bin/stable_token") == 1


def run_together(threads: int, work: Callable[[], object]) -> list[object]:
    """Start `work` in `threads` threads at the same moment; re-raise the first failure."""
    barrier = threading.Barrier(threads)
    results: list[object] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            results.append(work())
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            errors.append(exc)

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def assert_single_fetch(
    make_store: Callable[[], TokenStore], config: Config, fake: FakeWeChatServer
) -> None:
    """8 gateways (as if in 8 processes) start on an empty store: one token fetch in all."""
    gateways = [WechatpyGateway(config, make_store()) for _ in range(8)]
    fake.state.add_fault("cgi-bin/stable_token", delay=0.3)  # widen the race window
    queue = list(gateways)
    lock = threading.Lock()

    def work() -> str:
        with lock:
            gateway = queue.pop()
        return gateway.get_phone_number("phone-13800138000")

    assert run_together(8, work) == ["13800138000"] * 8
    assert count(fake, "cgi-bin/stable_token") == 1


def test_concurrent_first_use_fetches_once_on_sqlite(
    wechat_config: Config,
    token_session_factory: sessionmaker[Session],
    wechat_fake: FakeWeChatServer,
) -> None:
    assert_single_fetch(
        lambda: DatabaseTokenStore(token_session_factory), wechat_config, wechat_fake
    )


@pytest.fixture
def postgres_session_factory() -> Iterator[sessionmaker[Session]]:
    """`wechat_access_tokens` in a throwaway schema of the test PostgreSQL, if reachable."""
    import sqlalchemy as sa

    schema = f"wechat_test_{uuid.uuid4().hex[:8]}"
    admin = make_engine(PG_URL, connect_args={"connect_timeout": 2})
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        admin.dispose()
        pytest.skip(f"PostgreSQL not reachable: {exc.__class__.__name__}")
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        WeChatAccessToken.__table__.create(engine)
        yield make_session_factory(engine)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_concurrent_first_use_fetches_once_on_postgres(
    wechat_config: Config,
    postgres_session_factory: sessionmaker[Session],
    wechat_fake: FakeWeChatServer,
) -> None:
    assert_single_fetch(
        lambda: DatabaseTokenStore(postgres_session_factory), wechat_config, wechat_fake
    )


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of our own in the test Redis (database 15), deleted afterwards."""
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"Redis not reachable: {exc.__class__.__name__}")
    prefix = f"test-wechat-{uuid.uuid4().hex[:8]}:"
    yield prefix
    for key in client.scan_iter(match=prefix + "*"):
        client.delete(key)
    client.close()


def test_concurrent_first_use_fetches_once_on_redis(
    wechat_config: Config, redis_prefix: str, wechat_fake: FakeWeChatServer
) -> None:
    assert_single_fetch(
        lambda: RedisTokenStore(REDIS_URL, prefix=redis_prefix), wechat_config, wechat_fake
    )


def test_redis_store_invalidates_only_the_rejected_token(redis_prefix: str) -> None:
    store = RedisTokenStore(REDIS_URL, prefix=redis_prefix)
    tokens = iter(["t1", "t2"])

    def fetch() -> FetchedToken:
        return FetchedToken(next(tokens), 7200)

    assert store.get_token("wx1", fetch) == "t1"
    store.invalidate("wx1", "stale")
    assert store.get_token("wx1", fetch) == "t1"
    store.invalidate("wx1", "t1")
    assert store.get_token("wx1", fetch) == "t2"


class Clock:
    def __init__(self) -> None:
        self.moment: datetime = clock_now()

    def __call__(self) -> datetime:
        return self.moment


def test_database_store_expiry_margin_and_invalidation(
    token_session_factory: sessionmaker[Session],
) -> None:
    clock = Clock()
    store = DatabaseTokenStore(token_session_factory, clock=clock)
    fetched: list[str] = []

    def fetch() -> FetchedToken:
        fetched.append(f"t{len(fetched) + 1}")
        return FetchedToken(fetched[-1], 7200)

    assert store.get_token("wx1", fetch) == "t1"
    clock.moment += timedelta(seconds=7200 - 301)
    assert store.get_token("wx1", fetch) == "t1"
    clock.moment += timedelta(seconds=2)  # inside the last 5 minutes: treated as expired
    assert store.get_token("wx1", fetch) == "t2"

    store.invalidate("wx1", "t1")  # an older token: nothing to drop
    assert store.get_token("wx1", fetch) == "t2"
    store.invalidate("wx1", "t2")
    assert store.get_token("wx1", fetch) == "t3"


def test_a_failed_fetch_leaves_the_store_usable(
    token_session_factory: sessionmaker[Session],
) -> None:
    store = DatabaseTokenStore(token_session_factory)

    def broken() -> FetchedToken:
        raise WeChatError(None, "down")

    with pytest.raises(WeChatError):
        store.get_token("wx1", broken)
    assert store.get_token("wx1", lambda: FetchedToken("t1", 7200)) == "t1"


# --- subscribe messages, codes, phone numbers --------------------------------------------------


def test_subscribe_message_is_sent_in_wechat_format(
    wechat_gateway: WechatpyGateway, wechat_fake: FakeWeChatServer
) -> None:
    send_hello(wechat_gateway, miniprogram_state="trial")

    (call,) = wechat_fake.state.list_calls(SUBSCRIBE)
    assert call["json"] == {
        "touser": fake_openid("alice"),
        "template_id": "TPL-lead-accepted",
        "data": {
            "thing1": {"value": "低保申请已受理"},
            "time2": {"value": "2026年11月28日 15:01"},
        },
        "page": "pages/lead/detail?id=1",
        "miniprogram_state": "trial",
        "lang": "zh_CN",
    }


def test_subscribe_message_with_bad_data_names_the_field(wechat_gateway: WechatpyGateway) -> None:
    with pytest.raises(WeChatError) as caught:
        send_hello(
            wechat_gateway, data={"thing1": "这是一条超过二十个字符的很长很长很长的提醒内容"}
        )

    assert caught.value.errcode == 47003
    assert "data.thing1.value" in caught.value.errmsg
    assert not caught.value.retryable


def test_wxacode_is_a_png_of_scene_and_page(wechat_gateway: WechatpyGateway) -> None:
    png = wechat_gateway.get_unlimited_wxacode(scene="v=370304101", page="pages/apply/apply")

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    zxingcpp = pytest.importorskip("zxingcpp")
    from io import BytesIO

    from PIL import Image

    (decoded,) = zxingcpp.read_barcodes(Image.open(BytesIO(png)))
    assert decoded.text == "pages/apply/apply?scene=v=370304101"


@pytest.mark.parametrize(
    ("scene", "page", "errcode"),
    [("x" * 33, "pages/apply/apply", 40169), ("v=1", "/pages/apply/apply", 41030)],
)
def test_wxacode_errors(
    wechat_gateway: WechatpyGateway, scene: str, page: str, errcode: int
) -> None:
    with pytest.raises(WeChatError) as caught:
        wechat_gateway.get_unlimited_wxacode(scene=scene, page=page)
    assert caught.value.errcode == errcode


def test_phone_number(wechat_gateway: WechatpyGateway) -> None:
    assert wechat_gateway.get_phone_number("phone-13912345678") == "13912345678"
    with pytest.raises(WeChatError) as caught:
        wechat_gateway.get_phone_number("bad-phone-code")
    assert caught.value.errcode == 40029


# --- wiring ------------------------------------------------------------------------------------


def test_build_gateway_picks_the_token_store(
    wechat_config: Config, token_session_factory: sessionmaker[Session]
) -> None:
    from_db = build_gateway(wechat_config, token_session_factory)
    from_redis = build_gateway(wechat_config.with_overrides(redis_url=REDIS_URL))

    assert isinstance(from_db, WechatpyGateway) and isinstance(from_redis, WechatpyGateway)
    assert isinstance(from_db.client.token_store, DatabaseTokenStore)
    assert isinstance(from_redis.client.token_store, RedisTokenStore)
    with pytest.raises(ValueError):
        build_gateway(wechat_config)


def test_clients_point_at_the_configured_base(wechat_gateway: WechatpyGateway) -> None:
    client = wechat_gateway.client
    assert client.api_base == client.wxa.API_BASE_URL
    assert client.api_base + "cgi-bin/" == client.API_BASE_URL
    assert client.auto_retry is False
    assert client.timeout == (1.0, 3.0)
