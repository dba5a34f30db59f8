"""Production refuses to start with a default secret or WeChat pointed at the fake server."""

from __future__ import annotations

import pytest

from server.config import Config, ConfigError

SAFE = {
    "APP_ENV": "production",
    "DATABASE_URL": "postgresql+psycopg://app@db/erescue",
    "SECRET_KEY": "s" * 40,
    "FIELD_ENCRYPTION_KEY": "k1:" + "QUJD" * 10 + "QUJDRA==",
    "WECHAT_SECRET": "real-secret",
    "WECHAT_CALLBACK_TOKEN": "district-callback-token-2026",
    "WECHAT_API_BASE": "https://api.weixin.qq.com/",
    "MINIPROGRAM_LINK_BASE": "https://jiuzhu.example.cn/mp/",
}


def test_production_with_safe_settings_starts():
    assert Config.from_env(SAFE).is_production


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("SECRET_KEY", "", "SECRET_KEY"),
        ("FIELD_ENCRYPTION_KEY", "", "FIELD_ENCRYPTION_KEY"),
        ("WECHAT_API_BASE", "http://127.0.0.1:5100/", "WECHAT_API_BASE"),
        ("DATABASE_URL", "sqlite:///x.db", "DATABASE_URL"),
        ("MINIPROGRAM_LINK_BASE", "http://jiuzhu.example.cn/mp/", "MINIPROGRAM_LINK_BASE"),
        ("MINIPROGRAM_LINK_BASE", "", "MINIPROGRAM_LINK_BASE"),
        ("WECHAT_CALLBACK_TOKEN", "fake-callback-token", "WECHAT_CALLBACK_TOKEN"),
        ("WECHAT_CALLBACK_TOKEN", "", "WECHAT_CALLBACK_TOKEN"),
    ],
)
def test_production_refuses_unsafe_settings_and_names_them(name, value, named):
    env = {**SAFE, name: value}
    if value == "":
        del env[name]
    with pytest.raises(ConfigError, match=named):
        Config.from_env(env)


def test_development_defaults_work_without_any_environment():
    config = Config.from_env({})
    assert config.database_url.startswith("sqlite")
