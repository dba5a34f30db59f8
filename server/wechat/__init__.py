"""Everything the app asks of WeChat, behind `WeChatGateway` (server/wechat/interface.py).

`build_gateway(config, session_factory)` gives the real one (wechatpy + a token cache shared by
all processes); `server.wechat.fake_server` is the fake WeChat API it talks to in development
and tests. Importing this package loads only the interface: the wechatpy-backed names below
are imported on first use, so a service that imports `WeChatError` pulls in no HTTP client.
"""

from __future__ import annotations

from typing import Any

from server.wechat.interface import LoginSession, WeChatError, WeChatGateway

__all__ = ["LoginSession", "WeChatError", "WeChatGateway", "WechatpyGateway", "build_gateway"]


def __getattr__(name: str) -> Any:
    if name in ("WechatpyGateway", "build_gateway"):
        from server.wechat import gateway

        return getattr(gateway, name)
    raise AttributeError(name)
