"""The WeChat calls the app makes, behind a small protocol so services can be tested with fakes.

Every call retries at most once, and only after WeChat rejected the access token (40001, 40014,
42001): the token is dropped from the shared store, a new one fetched, the request repeated.
Every failure, from WeChat, the network or the token store (Redis down, a PostgreSQL lock wait
that timed out), surfaces as `WeChatError`; transport and store failures have errcode None.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import requests
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from wechatpy.exceptions import WeChatClientException

from server.config import Config
from server.metrics import WECHAT_CALLS, count_wechat_error
from server.wechat.client import BoshanWeChatClient
from server.wechat.errors import TOKEN_ERRCODES, WeChatError
from server.wechat.interface import LoginSession, WeChatGateway
from server.wechat.tokens import DatabaseTokenStore, RedisTokenStore, TokenStore

T = TypeVar("T")

SUBSCRIBE_SEND = "cgi-bin/message/subscribe/send"
WXACODE_UNLIMITED = "wxa/getwxacodeunlimit"
PHONE_NUMBER = "wxa/business/getuserphonenumber"
CODE_TO_SESSION = "sns/jscode2session"


class WechatpyGateway:
    """`WeChatGateway` over wechatpy 1.8.18 (see /work/shared/WECHAT.md for its gaps)."""

    def __init__(self, config: Config, token_store: TokenStore) -> None:
        self._store = token_store
        self.client = BoshanWeChatClient(config, token_store)

    def code_to_session(self, code: str) -> LoginSession:
        result = self._call(CODE_TO_SESSION, lambda: self.client.wxa.code_to_session(code))
        result = _expect_json(result, CODE_TO_SESSION)
        try:
            return LoginSession(result["openid"], result["session_key"], result.get("unionid"))
        except KeyError as exc:
            raise WeChatError(None, f"missing {exc} in answer", path=CODE_TO_SESSION) from exc

    def send_subscribe_message(
        self,
        *,
        openid: str,
        template_id: str,
        data: dict[str, str],
        page: str | None,
        miniprogram_state: str = "formal",
        lang: str = "zh_CN",
    ) -> None:
        body: dict[str, Any] = {
            "touser": openid,
            "template_id": template_id,
            "data": {key: {"value": value} for key, value in data.items()},
            "miniprogram_state": miniprogram_state,
            "lang": lang,
        }
        if page:
            body["page"] = page
        result = self._call(
            SUBSCRIBE_SEND, lambda: self.client.wxa._post(SUBSCRIBE_SEND, data=body)
        )
        _expect_json(result, SUBSCRIBE_SEND)

    def get_unlimited_wxacode(
        self,
        *,
        scene: str,
        page: str,
        check_path: bool = False,
        env_version: str = "release",
        width: int = 430,
    ) -> bytes:
        body = {
            "scene": scene,
            "page": page,
            "check_path": check_path,
            "env_version": env_version,
            "width": width,
        }
        result = self._call(
            WXACODE_UNLIMITED, lambda: self.client.wxa._post(WXACODE_UNLIMITED, data=body)
        )
        # Success is the image itself (wechatpy hands back the raw response); errors are JSON.
        if isinstance(result, requests.Response) and result.headers.get(
            "Content-Type", ""
        ).startswith("image/"):
            return result.content
        raise WeChatError(None, f"expected an image, got {result!r:.200}", path=WXACODE_UNLIMITED)

    def get_phone_number(self, code: str) -> str:
        result = self._call(
            PHONE_NUMBER, lambda: self.client.wxa._post(PHONE_NUMBER, data={"code": code})
        )
        result = _expect_json(result, PHONE_NUMBER)
        try:
            return str(result["phone_info"]["phoneNumber"])
        except (KeyError, TypeError) as exc:
            raise WeChatError(None, f"no phone_info in answer: {exc}", path=PHONE_NUMBER) from exc

    def _call(self, path: str, request: Callable[[], T]) -> T:
        """Run `request`; on a token error refresh the token and run it once more."""
        try:
            return _translated(path, request)
        except WeChatError as exc:
            if exc.errcode not in TOKEN_ERRCODES:
                raise
        rejected = self.client.token_in_use()
        if rejected is not None:
            _translated(path, lambda: self._store.invalidate(self.client.appid, rejected))
        _translated(path, lambda: self.client.fetch_access_token(rejected=rejected))
        return _translated(path, request)


def _translated(path: str, request: Callable[[], T]) -> T:
    """Run `request`, turning wechatpy's and requests' exceptions into WeChatError (each
    counted by its errcode in the metrics)."""
    WECHAT_CALLS.labels(path).inc()
    try:
        return _raising(path, request)
    except WeChatError as exc:
        count_wechat_error(path, exc.errcode)
        raise


def _raising(path: str, request: Callable[[], T]) -> T:
    try:
        return request()
    except WeChatClientException as exc:
        # errcode None: wechatpy saw an HTTP error status (or our token fetch a bad answer).
        status = None
        if exc.errcode is None and exc.response is not None:
            status = exc.response.status_code
        errmsg = exc.errmsg if exc.errmsg is not None else f"HTTP {status}"
        raise WeChatError(exc.errcode, str(errmsg), path=path, http_status=status) from exc
    except requests.RequestException as exc:
        raise WeChatError(None, f"{type(exc).__name__}: {exc}", path=path) from exc
    except (TimeoutError, RedisError, OperationalError) as exc:
        # The token store could not be read or locked in time: as transient as a network error.
        raise WeChatError(None, f"token store: {type(exc).__name__}: {exc}", path=path) from exc


def _expect_json(result: Any, path: str) -> dict[str, Any]:
    if not isinstance(result, dict):
        raise WeChatError(None, f"answer is not JSON: {result!r:.200}", path=path)
    return result


def build_gateway(
    config: Config, session_factory: sessionmaker[Session] | None = None
) -> WeChatGateway:
    """The production gateway: Redis token store when REDIS_URL is set, else the database."""
    store: TokenStore
    if config.redis_url:
        store = RedisTokenStore(config.redis_url)
    elif session_factory is not None:
        store = DatabaseTokenStore(session_factory)
    else:
        raise ValueError("build_gateway needs a session_factory when REDIS_URL is not set")
    return WechatpyGateway(config, store)
