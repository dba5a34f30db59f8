"""Pytest fixtures for anything that talks to WeChat: a real fake server on loopback.

Import the fixtures into a conftest (or a test module) to use them. Nothing here mocks
wechatpy: the gateway talks HTTP to `FakeWeChatServer`.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from server.config import Config
from server.db import make_engine, make_session_factory
from server.models.wechat import WeChatAccessToken
from server.wechat.fake_server import FakeWeChatServer
from server.wechat.gateway import WechatpyGateway
from server.wechat.tokens import DatabaseTokenStore


@pytest.fixture(scope="session")
def fake_wechat() -> Iterator[FakeWeChatServer]:
    """The session's fake server (a conftest fixture of the same name takes precedence)."""
    with FakeWeChatServer() as server:
        yield server


@pytest.fixture
def wechat_fake(fake_wechat: FakeWeChatServer) -> FakeWeChatServer:
    """The session's fake, with calls, faults, tokens and used codes forgotten."""
    fake_wechat.reset()
    return fake_wechat


@pytest.fixture
def wechat_config(wechat_fake: FakeWeChatServer) -> Config:
    return Config(
        wechat_api_base=wechat_fake.url, wechat_timeout_connect=1.0, wechat_timeout_read=3.0
    )


@pytest.fixture
def token_session_factory(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    """A throwaway SQLite database holding only `wechat_access_tokens`."""
    engine = make_engine(f"sqlite:///{tmp_path / 'wechat-tokens.db'}")
    WeChatAccessToken.__table__.create(engine)
    yield make_session_factory(engine)
    engine.dispose()


@pytest.fixture
def wechat_gateway(
    wechat_config: Config, token_session_factory: sessionmaker[Session]
) -> WechatpyGateway:
    return WechatpyGateway(wechat_config, DatabaseTokenStore(token_session_factory))


@pytest.fixture
def refused_wechat_url() -> str:
    """A loopback base URL nobody listens on (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return f"http://127.0.0.1:{port}/"
