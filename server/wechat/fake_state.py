"""What the fake WeChat server (`fake_server`) knows and checks, without Flask: the identities it
makes up from login and phone codes (`fake_openid`, stable across runs), the rules for
subscribe-message fields by type (`check_field`), and its state (issued tokens, used codes,
injected faults, the calls received).
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def _digest(salt: str, name: str) -> str:
    raw = hashlib.sha256(f"{salt}:{name}".encode()).digest()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def fake_openid(name: str) -> str:
    """The openid the fake gives the user called `name` (see the module docstring)."""
    return "o" + _digest("openid", name)[:27]


def fake_unionid(name: str) -> str:
    return "o" + _digest("unionid", name)[:27]


def name_from_code(code: str) -> str:
    parts = [part for part in code.split("-") if part]
    if len(parts) > 1 and parts[-1].isdigit():
        parts.pop()
    return parts[-1] if parts else code


def fake_phone_number(code: str) -> str:
    for part in code.split("-"):
        if re.fullmatch(r"1\d{10}", part):
            return part
    number = int(_digest("phone", name_from_code(code)).encode().hex(), 16) % 10**9
    return f"13{number:09d}"


OPENID_RE = re.compile(r"o[A-Za-z0-9_-]{27}")


CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")


CJK_RE = re.compile(r"[\u3400-\u9fff]+")


TIME_POINT = r"(\d{4}年\d{1,2}月\d{1,2}日)?\s*(\d{1,2}:\d{2}(:\d{2})?)?"


TIME_RE = re.compile(rf"{TIME_POINT}(\s*~\s*{TIME_POINT})?")


def _rule(limit: int, pattern: str | None = None) -> Callable[[str], str | None]:
    regex = re.compile(pattern) if pattern else None

    def check(value: str) -> str | None:
        if len(value) > limit:
            return "exceeds limit"
        if regex is not None and not regex.fullmatch(value):
            return "invalid"
        return None

    return check


def _check_time(value: str) -> str | None:
    if not re.search(r"\d", value) or not TIME_RE.fullmatch(value):
        return "invalid"
    return None


#: Field rules by type prefix, as published for subscribe messages.
FIELD_RULES: dict[str, Callable[[str], str | None]] = {
    "thing": _rule(20),
    "character_string": _rule(32, r"[\x21-\x7e]+"),
    "phrase": _rule(5, CJK_RE.pattern),
    "name": _rule(10),
    "number": _rule(32, r"\d+(\.\d+)?"),
    "letter": _rule(32, r"[A-Za-z]+"),
    "symbol": _rule(5),
    "amount": _rule(11 + 3, r"[¥￥$]?\d{1,10}(\.\d{1,2})?元?"),
    "phone_number": _rule(17, r"[+\d][\d\- ]*"),
    "car_number": _rule(8),
    "time": _check_time,
    "date": _check_time,
}


def check_field(key: str, value: Any) -> str | None:
    """Why `value` is refused for template field `key`, or None if WeChat would accept it."""
    kind = key.rstrip("0123456789")
    rule = FIELD_RULES.get(kind)
    if rule is None:
        return "unknown keyword"
    if not isinstance(value, str) or not value.strip():
        return "is empty"
    if CONTROL_RE.search(value):
        return "contains invalid characters"
    return rule(value)


@dataclass
class Fault:
    errcode: int | None = None
    errmsg: str = ""
    times: int = 1
    delay: float = 0.0
    http_status: int | None = None
    body: str | None = None


@dataclass
class IssuedToken:
    appid: str
    expires_at: float  # time.monotonic()
    revoked: bool = False


@dataclass
class FakeWeChatState:
    """Everything the fake remembers; every access holds `lock` (the server is threaded)."""

    appid: str | None = None
    secret: str | None = None
    templates: frozenset[str] | None = None
    pages: frozenset[str] | None = None
    expires_in: int = 7200
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: list[dict[str, Any]] = field(default_factory=list)
    faults: dict[str, list[Fault]] = field(default_factory=dict)
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    stable: dict[str, str] = field(default_factory=dict)
    used_codes: set[str] = field(default_factory=set)
    next_msgid: int = 1

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.faults.clear()
            self.tokens.clear()
            self.stable.clear()
            self.used_codes.clear()

    def add_fault(self, path: str, **fault: Any) -> None:
        with self.lock:
            self.faults.setdefault(path.strip("/"), []).append(Fault(**fault))

    def expire_tokens(self) -> None:
        with self.lock:
            for issued in self.tokens.values():
                issued.revoked = True
            self.stable.clear()

    def list_calls(self, path: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(c) for c in self.calls if path is None or c["path"] == path.strip("/")]

    def record(self, call: dict[str, Any]) -> None:
        with self.lock:
            self.calls.append(call)

    def take_fault(self, path: str) -> Fault | None:
        with self.lock:
            queue = self.faults.get(path)
            if not queue:
                return None
            fault = queue[0]
            fault.times -= 1
            if fault.times <= 0:
                queue.pop(0)
            return fault

    def issue_token(self, appid: str, *, stable: bool, force: bool) -> tuple[str, int]:
        with self.lock:
            now = time.monotonic()
            current = self.stable.get(appid) if stable and not force else None
            issued = self.tokens.get(current) if current else None
            if current and issued and not issued.revoked and issued.expires_at > now:
                return current, int(issued.expires_at - now)
            token = secrets.token_urlsafe(96)
            self.tokens[token] = IssuedToken(appid, now + self.expires_in)
            if stable:
                self.stable[appid] = token
            return token, self.expires_in

    def check_token(self, token: str | None) -> tuple[int, str] | IssuedToken:
        with self.lock:
            issued = self.tokens.get(token or "")
            if issued is None or issued.revoked:
                return 40001, "invalid credential, access_token is invalid or not latest"
            if issued.expires_at <= time.monotonic():
                return 42001, "access_token expired"
            return issued

    def use_code(self, code: str) -> bool:
        """Mark a login code used; False when it was used before."""
        with self.lock:
            if code in self.used_codes:
                return False
            self.used_codes.add(code)
            return True

    def new_msgid(self) -> int:
        with self.lock:
            self.next_msgid += 1
            return 3_000_000_000 + self.next_msgid
