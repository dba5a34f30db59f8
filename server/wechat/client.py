"""wechatpy's client, pointed at the configured API base and the shared token store.

Differences from a stock `WeChatClient`:
- every API object's `https://api.weixin.qq.com/` base is replaced by `config.wechat_api_base`
  (the fake server in development and tests);
- `auto_retry=False` (its retry recurses without bound) and a `(connect, read)` timeout on every
  request, including the token fetch (wechatpy's own token fetch has none);
- its HTTP goes through `KeepAliveSession` (one kept connection per thread, not requests);
- the access token comes from a `TokenStore` shared by all processes and is fetched with
  `POST cgi-bin/stable_token`, WeChat's recommended endpoint.
"""

from __future__ import annotations

import threading
from typing import Any

import requests
from wechatpy import WeChatClient
from wechatpy.client.api.base import BaseWeChatAPI
from wechatpy.exceptions import WeChatClientException

from server.config import Config
from server.wechat.tokens import FetchedToken, TokenStore
from server.wechat.transport import KeepAliveSession

WECHAT_BASE = "https://api.weixin.qq.com/"


class BoshanWeChatClient(WeChatClient):
    def __init__(self, config: Config, token_store: TokenStore) -> None:
        super().__init__(
            config.wechat_appid,
            config.wechat_secret,
            timeout=(config.wechat_timeout_connect, config.wechat_timeout_read),
            auto_retry=False,
        )
        # Keep-alive connections without requests' per-call overhead (server/wechat/transport.py).
        self._http = KeepAliveSession()
        self.token_store = token_store
        self.api_base = config.wechat_api_base.rstrip("/") + "/"
        # Instance attributes: other clients in the process keep their own bases.
        self.API_BASE_URL = self.api_base + "cgi-bin/"
        self._rebase_api_objects()
        self._local = threading.local()

    def _rebase_api_objects(self) -> None:
        # wechatpy's __new__ gave this instance its own API objects; `wxa` is the one we use.
        # (vars(), not inspect.getmembers: that would evaluate `access_token` and fetch one.)
        for api in list(vars(self).values()):
            if not isinstance(api, BaseWeChatAPI):
                continue
            base = getattr(api, "API_BASE_URL", "")
            if base.startswith(WECHAT_BASE):
                api.API_BASE_URL = self.api_base + base[len(WECHAT_BASE) :]
        self.wxa.API_BASE_URL = self.api_base

    @property
    def access_token(self) -> str:
        """The shared token; remembered per thread so a rejection can invalidate exactly it.

        (wechatpy's __new__ probes this property before __init__ ran: the AttributeError on
        `token_store` makes it skip it, as intended.)
        """
        token = self.token_store.get_token(self.appid, self.request_stable_token)
        self._local.token = token
        return token

    def token_in_use(self) -> str | None:
        """The token this thread's last request carried."""
        return getattr(self._local, "token", None)

    def fetch_access_token(self, rejected: str | None = None) -> dict[str, Any]:
        """Make sure the shared store holds a usable token, fetching it if needed.

        `rejected` is a token WeChat just refused: if `stable_token` hands the same one back,
        ask once more with `force_refresh` (rationed by WeChat, so only in that case).
        """

        def fetch() -> FetchedToken:
            fetched = self.request_stable_token()
            if rejected is not None and fetched.token == rejected:
                fetched = self.request_stable_token(force_refresh=True)
            return fetched

        token = self.token_store.get_token(self.appid, fetch)
        self._local.token = token
        return {"access_token": token}

    def request_stable_token(self, force_refresh: bool = False) -> FetchedToken:
        """One `POST cgi-bin/stable_token`, no caching. Raises WeChatClientException."""
        body = {
            "grant_type": "client_credential",
            "appid": self.appid,
            "secret": self.secret,
            "force_refresh": force_refresh,
        }
        res = self._http.post(
            self.api_base + "cgi-bin/stable_token", json=body, timeout=self.timeout
        )
        try:
            res.raise_for_status()
            result = res.json()
        except (requests.RequestException, ValueError) as exc:
            raise WeChatClientException(
                None, f"stable_token: {exc}", client=self, request=res.request, response=res
            ) from exc
        if not isinstance(result, dict) or result.get("errcode", 0) != 0:
            errcode = result.get("errcode") if isinstance(result, dict) else None
            errmsg = result.get("errmsg", "") if isinstance(result, dict) else repr(result)
            raise WeChatClientException(
                errcode, errmsg, client=self, request=res.request, response=res
            )
        return FetchedToken(result["access_token"], int(result.get("expires_in", 7200)))
