"""What services ask of WeChat, without WeChat: the gateway protocol, its value types and its
one error. This module imports no third-party package, so a service can type its gateway
properly and importing a service never loads wechatpy, requests or redis (a test checks it);
the real gateway (`server.wechat.gateway`) is built by the runtime on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from server.wechat.errors import WeChatError


@dataclass(frozen=True)
class LoginSession:
    openid: str
    #: Never leaves the server; WeChat may rotate it on every login.
    session_key: str = field(repr=False)
    #: Only when the mini-program is bound to an Open Platform account.
    unionid: str | None = None


class WeChatGateway(Protocol):
    """Every WeChat call the app makes. Each raises `WeChatError` on any failure."""

    def code_to_session(self, code: str) -> LoginSession: ...

    def send_subscribe_message(
        self,
        *,
        openid: str,
        template_id: str,
        data: dict[str, str],
        page: str | None,
        miniprogram_state: str = "formal",
        lang: str = "zh_CN",
    ) -> None: ...

    def get_unlimited_wxacode(
        self,
        *,
        scene: str,
        page: str,
        check_path: bool = False,
        env_version: str = "release",
        width: int = 430,
    ) -> bytes: ...

    def get_phone_number(self, code: str) -> str: ...


__all__ = ["LoginSession", "WeChatError", "WeChatGateway"]
