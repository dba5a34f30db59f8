"""Settings, read once from the environment (and an optional `.env`).

Nothing here runs at import: `Config.from_env()` is called by `create_app` and the CLI.
In production (`APP_ENV=production`) a missing or default secret, or WeChat pointed at the
fake server, stops the app with a message that names the setting.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

#: Values that only ever appear in development; production refuses them.
DEV_SECRET_KEY = "dev-only-secret-key-not-for-production"
DEV_CALLBACK_TOKEN = "fake-callback-token"
DEV_LINK_BASE = "https://e-rescue.example.invalid/mp/"
DEV_FIELD_KEY = base64.urlsafe_b64encode(b"dev-only-field-key-32-bytes-long").decode()
FAKE_WECHAT_MARKERS = ("127.0.0.1", "localhost", "::1")
#: 网络安全法 art. 21 / 等保: network logs are kept six months at least.
MIN_AUDIT_RETENTION_DAYS = 180


class ConfigError(RuntimeError):
    """A setting is missing or unsafe; the message names it."""


@dataclass(frozen=True)
class Config:
    env: str = "development"
    database_url: str = "sqlite:///instance/e-rescue.db"
    upload_dir: str = "instance/uploads"
    #: Where photos and department files are kept: `local` (UPLOAD_DIR) or `s3` (server/storage).
    storage_backend: str = "local"
    s3_bucket: str = ""
    #: Empty: AWS itself; else the S3-compatible server (`https://minio.intranet:9000`).
    s3_endpoint_url: str = ""
    s3_region: str = ""
    #: Keys are stored under this prefix in the bucket (several deployments may share one).
    s3_prefix: str = ""
    #: Empty: boto3's own credential chain (instance role, AWS_* variables).
    s3_access_key_id: str = ""
    s3_secret_access_key: str = ""
    s3_timeout: float = 10.0
    secret_key: str = DEV_SECRET_KEY
    #: Comma-separated `kid:base64key` pairs; the first one encrypts, all of them decrypt.
    field_encryption_key: str = f"k1:{DEV_FIELD_KEY}"
    wechat_appid: str = "wx-fake-appid"
    wechat_secret: str = "fake-secret"
    wechat_api_base: str = "http://127.0.0.1:5100/"
    wechat_timeout_connect: float = 3.0
    wechat_timeout_read: float = 10.0
    wechat_callback_token: str = DEV_CALLBACK_TOKEN
    wechat_callback_aes_key: str = ""
    redis_url: str = ""
    #: Subscribe-message template ids, one per event (see services/notifications/messages.py for
    #: fields).
    wechat_template_received: str = "tmpl-application-received"
    wechat_template_status: str = "tmpl-application-status"
    wechat_template_result: str = "tmpl-application-result"
    wechat_template_revisit: str = "tmpl-revisit-request"
    #: Comma-separated template ids granted as long-term subscriptions (public-service apps).
    wechat_long_term_templates: str = ""
    #: formal / trial / developer: which version of the mini-program a message opens.
    wechat_miniprogram_state: str = "formal"
    resident_token_ttl: int = 30 * 24 * 3600
    staff_token_ttl: int = 12 * 3600
    #: Failed passwords an account may take before it is locked (等保: 5), and for how long.
    login_max_failures: int = 5
    login_lock_seconds: int = 15 * 60
    #: Failed logins from one address before each further failure from it is slowed down.
    login_ip_max_failures: int = 30
    #: Seconds a failed login from an address over its limit waits before it is answered.
    login_ip_slowdown_seconds: float = 2.0
    #: How far back failures are counted.
    login_window_seconds: int = 15 * 60
    #: Reverse proxies in front of the app whose X-Forwarded-For/-Proto are trusted (0: none).
    proxy_hops: int = 0
    #: Staff tokens (and console sessions) expire after this long without use (sliding).
    staff_idle_timeout: int = 30 * 60
    #: Staff password rules (等保 level 3).
    password_min_length: int = 8
    password_history: int = 5
    password_max_age_days: int = 90
    #: Key of the audit chain's HMAC (empty: derived from SECRET_KEY). Never change it: the
    #: chain written so far is verified with it.
    audit_chain_key: str = ""
    #: Days the audit trail is kept at least (等保: 180 at least; less is refused).
    audit_retention_days: int = 180
    #: `host:port` (UDP) or a socket path such as /dev/log: `e-rescue audit export --syslog`.
    audit_syslog_address: str = ""
    max_upload_bytes: int = 10 * 1024 * 1024
    miniprogram_apply_page: str = "pages/apply/apply"
    #: HTTPS prefix of the links plain QR codes carry (扫普通链接二维码打开小程序); the WeChat
    #: console maps `<base>apply` and `<base>redeem` to the apply and redeem pages.
    miniprogram_link_base: str = DEV_LINK_BASE
    district_hotline: str = "0533-4180000"
    log_level: str = "INFO"
    #: `text` or `json` (one object per line, with the request id; server/logs.py).
    log_format: str = "text"
    #: The private port `e-rescue metrics` serves Prometheus metrics on (server/metrics.py).
    metrics_port: int = 9464
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_production(self) -> bool:
        return self.env == "production"

    @property
    def audit_chain_key_bytes(self) -> bytes:
        import hashlib

        secret = self.audit_chain_key or f"derived|{self.secret_key}"
        return hashlib.sha256(b"e-rescue-audit-chain|" + secret.encode()).digest()

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, *, dotenv: bool = True) -> Config:
        if environ is None:
            if dotenv:
                from dotenv import load_dotenv

                load_dotenv(Path.cwd() / ".env", override=False)
            environ = dict(os.environ)
        values: dict[str, Any] = {}
        env_names = {"env": "APP_ENV"}
        for f in fields(cls):
            if f.name == "extra":
                continue
            name = env_names.get(f.name, f.name.upper())
            if name in environ and environ[name] != "":
                values[f.name] = _coerce(f.type, environ[name])
        config = cls(**values)
        config.check()
        return config

    def with_overrides(self, **overrides: Any) -> Config:
        return replace(self, **overrides)

    def check(self) -> None:
        """Refuse unsafe production settings, naming each one."""
        if not self.is_production:
            return
        problems = []
        if not self.secret_key or self.secret_key == DEV_SECRET_KEY:
            problems.append("SECRET_KEY 未设置或仍为开发默认值 (SECRET_KEY missing or default)")
        if not self.field_encryption_key or DEV_FIELD_KEY in self.field_encryption_key:
            problems.append("FIELD_ENCRYPTION_KEY 未设置或仍为开发默认值 (missing or default)")
        if not self.wechat_secret or self.wechat_secret == "fake-secret":
            problems.append("WECHAT_SECRET 未设置 (WECHAT_SECRET missing or default)")
        if any(marker in self.wechat_api_base for marker in FAKE_WECHAT_MARKERS):
            problems.append(
                f"WECHAT_API_BASE 指向本机模拟服务器 ({self.wechat_api_base}); "
                "production must use https://api.weixin.qq.com/"
            )
        if not self.miniprogram_link_base.startswith("https://") or (
            self.miniprogram_link_base == DEV_LINK_BASE
        ):
            problems.append(
                "MINIPROGRAM_LINK_BASE 须为在微信后台登记的 https 地址 "
                "(the district's https link prefix for plain QR codes)"
            )
        if not self.wechat_callback_token or self.wechat_callback_token == DEV_CALLBACK_TOKEN:
            problems.append(
                "WECHAT_CALLBACK_TOKEN 未设置或仍为开发默认值 (the callback token WeChat signs "
                "pushes with is missing or default)"
            )
        if self.database_url.startswith("sqlite"):
            problems.append("DATABASE_URL 为 SQLite; production needs PostgreSQL")
        if self.audit_retention_days < MIN_AUDIT_RETENTION_DAYS:
            problems.append(
                f"AUDIT_RETENTION_DAYS 少于 {MIN_AUDIT_RETENTION_DAYS} 天 (等保 needs 180 at least)"
            )
        if self.storage_backend not in ("local", "s3"):
            problems.append(f"STORAGE_BACKEND 须为 local 或 s3 ({self.storage_backend!r})")
        elif self.storage_backend == "s3" and not self.s3_bucket:
            problems.append("STORAGE_BACKEND=s3 需要 S3_BUCKET (S3_BUCKET missing)")
        if problems:
            raise ConfigError("Refusing to start in production:\n  - " + "\n  - ".join(problems))


def _coerce(type_name: Any, raw: str) -> Any:
    kind = type_name if isinstance(type_name, str) else getattr(type_name, "__name__", "str")
    if kind == "int":
        return int(raw)
    if kind == "float":
        return float(raw)
    return raw
