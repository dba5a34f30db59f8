"""Everything the app asks of WeChat, behind `WeChatGateway`.

`build_gateway(config, session_factory)` gives the real one (wechatpy + a token cache shared by
all processes); `server.wechat.fake_server` is the fake WeChat API it talks to in development
and tests.
"""

from server.wechat.errors import WeChatError
from server.wechat.gateway import LoginSession, WeChatGateway, WechatpyGateway, build_gateway

__all__ = ["LoginSession", "WeChatError", "WeChatGateway", "WechatpyGateway", "build_gateway"]
