"""A keep-alive HTTP transport for wechatpy's client: one persistent connection per thread and
host (http.client, TCP_NODELAY, request line, headers and body in one write), in place of a
`requests.Session` whose per-request bookkeeping (environment proxies, netrc, cookie jar,
adapters) cost several times the request itself on our two cores (README, Notifications).

It speaks the part of `requests.Session` that wechatpy and our client use (`request`, `get`,
`post` with `params`, `data` or `json`, `timeout` as a number or `(connect, read)`), returns
real `requests.Response` objects and raises `requests` exceptions, so wechatpy runs unchanged
and the gateway translates errors as before. A connection the server closed while idle is
noticed before reuse (it reads as EOF) and replaced; a request is never sent twice. When an
outbound proxy is configured in the environment, `requests` (which honours it) is used.
"""

from __future__ import annotations

import http.client
import json as jsonlib
import select
import socket
import ssl
import threading
import urllib.request
from typing import Any
from urllib.parse import urlencode, urlsplit

import requests
from requests.structures import CaseInsensitiveDict

_Key = tuple[str, str, int]


class KeepAliveSession:
    def __init__(self) -> None:
        self._local = threading.local()
        self._ssl = ssl.create_default_context()
        self._proxies = urllib.request.getproxies()
        self._fallback: requests.Session | None = None

    # --- requests.Session's surface -------------------------------------------------------

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        data: bytes | str | dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
        timeout: float | tuple[float, float] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        parts = urlsplit(url)
        if kwargs or self._proxied(parts.scheme, parts.hostname or ""):
            return self._requests().request(
                method, url, params=params, data=data, json=json, headers=headers,
                timeout=timeout, **kwargs,
            )  # fmt: skip
        body, content_type = _body(data, json)
        target = parts.path or "/"
        query = "&".join(q for q in (parts.query, urlencode(params or {})) if q)
        if query:
            target += "?" + query
        sent = {"Host": parts.netloc, "Accept-Encoding": "identity", "Connection": "keep-alive"}
        if content_type:
            sent["Content-Type"] = content_type
        if body is not None or method.upper() in ("POST", "PUT", "PATCH"):
            sent["Content-Length"] = str(len(body or b""))
        sent.update(headers or {})
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        key = (parts.scheme, parts.hostname or "", parts.port or _default_port(parts.scheme))
        conn = self._connection(key, connect, url)
        try:
            conn.sock.settimeout(read)  # type: ignore[union-attr]
            conn.request(method.upper(), target, body=body, headers=sent)
            answer = conn.getresponse()
            content = answer.read()
        except TimeoutError as exc:
            self._drop(key)
            raise requests.exceptions.ReadTimeout(f"{url}: read timed out") from exc
        except (OSError, http.client.HTTPException) as exc:
            self._drop(key)
            raise requests.exceptions.ConnectionError(f"{url}: {exc!r}") from exc
        if answer.will_close:
            self._drop(key)
        return _response(url, answer, content)

    def close(self) -> None:
        for conn in getattr(self._local, "connections", {}).values():
            conn.close()
        self._local.connections = {}

    # --- connections ----------------------------------------------------------------------

    def _connection(self, key: _Key, connect: float | None, url: str) -> http.client.HTTPConnection:
        connections: dict[_Key, http.client.HTTPConnection] = self._local.__dict__.setdefault(
            "connections", {}
        )
        conn = connections.get(key)
        if conn is not None and conn.sock is not None and not _dropped(conn.sock):
            return conn
        if conn is not None:
            conn.close()
        scheme, host, port = key
        if scheme == "https":
            conn = http.client.HTTPSConnection(host, port, timeout=connect, context=self._ssl)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=connect)
        try:
            conn.connect()
        except TimeoutError as exc:
            raise requests.exceptions.ConnectTimeout(f"{url}: connect timed out") from exc
        except OSError as exc:
            raise requests.exceptions.ConnectionError(f"{url}: {exc!r}") from exc
        assert conn.sock is not None
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connections[key] = conn
        return conn

    def _drop(self, key: _Key) -> None:
        conn = getattr(self._local, "connections", {}).pop(key, None)
        if conn is not None:
            conn.close()

    def _proxied(self, scheme: str, host: str) -> bool:
        return bool(self._proxies.get(scheme) or self._proxies.get("all")) and not (
            urllib.request.proxy_bypass(host)
        )

    def _requests(self) -> requests.Session:
        if self._fallback is None:
            self._fallback = requests.Session()
        return self._fallback


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def _dropped(sock: socket.socket) -> bool:
    """An idle kept connection that reads as ready has been closed (or sent junk): replace it."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _body(data: Any, json: Any) -> tuple[bytes | None, str | None]:
    if json is not None:
        return jsonlib.dumps(json, ensure_ascii=False).encode(), "application/json"
    if isinstance(data, dict):
        return urlencode(data).encode(), "application/x-www-form-urlencoded"
    if isinstance(data, str):
        return data.encode(), "application/json"
    if isinstance(data, bytes):
        return data, "application/json"
    return None, None


def _response(url: str, answer: http.client.HTTPResponse, content: bytes) -> requests.Response:
    response = requests.Response()
    response.status_code = answer.status
    response.reason = answer.reason
    response.headers = CaseInsensitiveDict(answer.getheaders())
    response._content = content  # noqa: SLF001 - what requests itself fills
    response.url = url
    response.encoding = "utf-8"
    return response
