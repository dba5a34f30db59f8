"""A fake of the WeChat server API, for `make run`, `e-rescue fake-wechat` and the tests.

It speaks the same HTTP and JSON as https://api.weixin.qq.com/ for the endpoints we use, with
realistic errcodes, so the real gateway (wechatpy) runs unchanged against it.

Login codes (`GET sns/jscode2session?js_code=...`):
- The user's name is the last `-`-separated part of the code after dropping a trailing all-digit
  part: "user-alice-1", "user-alice-2", "alice-7" and "alice" all log in "alice". The openid is
  `fake_openid(name)` (28 characters starting with "o", stable across runs).
- Names starting with "u" (e.g. "user-uma-1") also get a `unionid` (`fake_unionid(name)`).
- Each code works once (again → 40163). Codes starting with "bad" → 40029 invalid code,
  "risky-" → 40226 risky user, "busy-" → -1 system busy, "limit-" → 45011 rate limit.
- A new `session_key` on every login.

Phone codes (`POST wxa/business/getuserphonenumber {"code"}`): a dash-separated part that is an
11-digit number starting with 1 is the phone number ("phone-13800138000"); otherwise the number is
derived from the name as for login codes. "bad..." → 40029.

Access tokens: `GET cgi-bin/token` and `POST cgi-bin/stable_token` issue tokens valid for
`expires_in` seconds (7200). stable_token returns the appid's current token while it is valid
(a new one with `force_refresh`). Unknown or revoked tokens → 40001, expired ones → 42001.
Any appid/secret is accepted unless `appid`/`secret` were given (then 40013 / 40125).

Subscribe messages check the token, the openid's shape (40003), the template id (40037 when it
starts with "bad" or is not in `templates` if given), the page (41030 with a leading slash) and
each data field by its type prefix (`thing1` is a `thing`) → 47003 "argument invalid!
data.thing1.value ..." naming the field.

Test controls (JSON, outside WeChat's namespace):
- `GET  /_fake/calls[?path=...]` the requests received: method, path (no leading slash), query,
  json, time.
- `POST /_fake/reset` forget calls, faults, tokens and used codes.
- `POST /_fake/faults {"path", "errcode"?, "errmsg"?, "times": 1, "delay": 0, "http_status"?,
  "body"?}` the next `times` requests to `path` wait `delay` seconds, then answer with
  `http_status` (plain text), or `body` (raw text with status 200, e.g. not JSON), or
  `{"errcode", "errmsg"}`; a fault with only a delay lets the request proceed normally.
- `POST /_fake/expire-tokens` revoke every issued token (next use → 40001).
The same controls are methods of `FakeWeChatState` (`FakeWeChatServer.state`).

Importing this module has no side effects; nothing listens until `FakeWeChatServer.start()` or
`run_fake_wechat()`.
"""

from __future__ import annotations

import base64
import io
import re
import secrets
import socket
import threading
import time
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from server import clock
from server.wechat.fake_state import (
    OPENID_RE,
    FakeWeChatState,
    IssuedToken,
    check_field,
    fake_openid,
    fake_phone_number,
    fake_unionid,
    name_from_code,
)

TOKEN_PATHS = ("cgi-bin/token", "cgi-bin/stable_token")
ReplyT = Response | tuple[Response, int]


def _error(errcode: int, errmsg: str) -> Response:
    rid = secrets.token_hex(4) + "-" + secrets.token_hex(6)
    return jsonify(errcode=errcode, errmsg=f"{errmsg} rid: {rid}")


def _body() -> dict[str, Any]:
    # wechatpy posts JSON without a JSON content type, as WeChat tolerates.
    data = request.get_json(force=True, silent=True)
    return data if isinstance(data, dict) else {}


def create_fake_wechat_app(
    *,
    appid: str | None = None,
    secret: str | None = None,
    templates: set[str] | None = None,
    pages: set[str] | None = None,
    expires_in: int = 7200,
) -> Flask:
    """The fake as a Flask app; its state is `app.extensions["fake_wechat"]`."""
    state = FakeWeChatState(
        appid=appid,
        secret=secret,
        templates=frozenset(templates) if templates is not None else None,
        pages=frozenset(pages) if pages is not None else None,
        expires_in=expires_in,
    )
    app = Flask("fake_wechat")
    app.extensions["fake_wechat"] = state
    _register_hooks(app, state)
    _register_token_routes(app, state)
    _register_api_routes(app, state)
    _register_controls(app, state)
    return app


def _register_hooks(app: Flask, state: FakeWeChatState) -> None:
    @app.before_request
    def record_and_inject_faults() -> Response | tuple[str, int] | None:
        path = request.path.strip("/")
        if path.startswith("_fake"):
            return None
        body = request.get_json(force=True, silent=True)
        state.record(
            {
                "method": request.method,
                "path": path,
                "query": request.args.to_dict(),
                "json": body,
                "time": clock.now().isoformat(),
            }
        )
        fault = state.take_fault(path)
        if fault is None:
            return None
        if fault.delay:
            time.sleep(fault.delay)
        if fault.http_status:
            return f"fake fault: HTTP {fault.http_status}", fault.http_status
        if fault.body is not None:
            return Response(fault.body, status=200, mimetype="text/html")
        if fault.errcode is not None:
            return jsonify(errcode=fault.errcode, errmsg=fault.errmsg or "fake fault")
        return None


def _check_app(state: FakeWeChatState, appid: str | None, secret: str | None) -> Response | None:
    if not appid or (state.appid is not None and appid != state.appid):
        return _error(40013, "invalid appid")
    if not secret or (state.secret is not None and secret != state.secret):
        return _error(40125, "invalid appsecret")
    return None


def _register_token_routes(app: Flask, state: FakeWeChatState) -> None:
    @app.get("/cgi-bin/token")
    def token() -> Response:
        args = request.args
        if args.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        refused = _check_app(state, args.get("appid"), args.get("secret"))
        if refused is not None:
            return refused
        access_token, expires_in = state.issue_token(args["appid"], stable=False, force=True)
        return jsonify(access_token=access_token, expires_in=expires_in)

    @app.post("/cgi-bin/stable_token")
    def stable_token() -> Response:
        body = _body()
        if body.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        refused = _check_app(state, body.get("appid"), body.get("secret"))
        if refused is not None:
            return refused
        access_token, expires_in = state.issue_token(
            body["appid"], stable=True, force=bool(body.get("force_refresh"))
        )
        return jsonify(access_token=access_token, expires_in=expires_in)

    @app.get("/sns/jscode2session")
    def jscode2session() -> Response:
        args = request.args
        refused = _check_app(state, args.get("appid"), args.get("secret"))
        if refused is not None:
            return refused
        if args.get("grant_type") != "authorization_code":
            return _error(40002, "invalid grant_type")
        return _login(state, args.get("js_code", ""))


LOGIN_ERRORS = {
    "bad": (40029, "invalid code"),
    "risky-": (40226, "high risk level user, login blocked"),
    "busy-": (-1, "system error"),
    "limit-": (45011, "api minute-quota reach limit mustslower retry next minute"),
}


def _login(state: FakeWeChatState, code: str) -> Response:
    if not code:
        return _error(41008, "missing code")
    for prefix, (errcode, errmsg) in LOGIN_ERRORS.items():
        if code.startswith(prefix):
            return _error(errcode, errmsg)
    if not state.use_code(code):
        return _error(40163, "code been used")
    name = name_from_code(code)
    answer = {
        "openid": fake_openid(name),
        "session_key": base64.b64encode(secrets.token_bytes(16)).decode(),
    }
    if name.startswith("u"):
        answer["unionid"] = fake_unionid(name)
    return jsonify(answer)


def _register_api_routes(app: Flask, state: FakeWeChatState) -> None:
    @app.post("/cgi-bin/message/subscribe/send")
    def subscribe_send() -> Response:
        issued = state.check_token(request.args.get("access_token"))
        if not isinstance(issued, IssuedToken):
            return _error(*issued)
        refused = _check_subscribe(state, _body())
        if refused is not None:
            return refused
        return jsonify(errcode=0, errmsg="ok", msgid=state.new_msgid())

    @app.post("/wxa/getwxacodeunlimit")
    def wxacode_unlimited() -> Response:
        issued = state.check_token(request.args.get("access_token"))
        if not isinstance(issued, IssuedToken):
            return _error(*issued)
        body = _body()
        refused = _check_wxacode(state, body)
        if refused is not None:
            return refused
        png = _qr_png(f"{body.get('page', '')}?scene={body['scene']}", body.get("width", 430))
        return Response(png, mimetype="image/png")

    @app.post("/wxa/business/getuserphonenumber")
    def phone_number() -> Response:
        issued = state.check_token(request.args.get("access_token"))
        if not isinstance(issued, IssuedToken):
            return _error(*issued)
        code = str(_body().get("code") or "")
        if not code or code.startswith("bad"):
            return _error(40029, "invalid code")
        number = fake_phone_number(code)
        watermark = {"timestamp": int(clock.now().timestamp()), "appid": issued.appid}
        phone_info = {
            "phoneNumber": number,
            "purePhoneNumber": number,
            "countryCode": "86",
            "watermark": watermark,
        }
        return jsonify(errcode=0, errmsg="ok", phone_info=phone_info)


def _check_subscribe(state: FakeWeChatState, body: dict[str, Any]) -> Response | None:
    if not OPENID_RE.fullmatch(str(body.get("touser") or "")):
        return _error(40003, "invalid openid")
    template_id = str(body.get("template_id") or "")
    if (
        not template_id
        or template_id.startswith("bad")
        or (state.templates is not None and template_id not in state.templates)
    ):
        return _error(40037, "invalid template_id")
    page = body.get("page")
    if page is not None and (not isinstance(page, str) or page.startswith("/")):
        return _error(41030, "invalid page")
    if body.get("miniprogram_state", "formal") not in ("developer", "trial", "formal"):
        return _error(47003, "argument invalid! miniprogram_state invalid")
    data = body.get("data")
    if not isinstance(data, dict) or not data:
        return _error(47003, "argument invalid! data is empty")
    for key, item in data.items():
        value = item.get("value") if isinstance(item, dict) else None
        problem = check_field(str(key), value)
        if problem is not None:
            return _error(47003, f"argument invalid! data.{key}.value {problem}")
    return None


def _check_wxacode(state: FakeWeChatState, body: dict[str, Any]) -> Response | None:
    scene = body.get("scene")
    if not isinstance(scene, str) or not re.fullmatch(r"[\x21-\x7e]{1,32}", scene):
        return _error(40169, "invalid length for scene, or the data is not json string")
    page = body.get("page")
    if page is not None and (not isinstance(page, str) or page.startswith("/")):
        return _error(41030, "invalid page")
    if body.get("check_path", True) and state.pages is not None and page not in state.pages:
        return _error(41030, "invalid page")
    if body.get("env_version", "release") not in ("release", "trial", "develop"):
        return _error(40097, "invalid args")
    return None


def _qr_png(text: str, width: Any) -> bytes:
    import qrcode
    from PIL import Image

    side = min(max(int(width) if isinstance(width, int | float) else 430, 280), 1280)
    qr = qrcode.QRCode(border=2)
    qr.add_data(text)
    qr.make(fit=True)
    image = qr.make_image().get_image().convert("L").resize((side, side), Image.Resampling.NEAREST)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _register_controls(app: Flask, state: FakeWeChatState) -> None:
    @app.get("/_fake/calls")
    def calls() -> Response:
        return jsonify(calls=state.list_calls(request.args.get("path")))

    @app.post("/_fake/reset")
    def reset() -> Response:
        state.reset()
        return jsonify(ok=True)

    @app.post("/_fake/faults")
    def faults() -> ReplyT:
        body = _body()
        allowed = {"errcode", "errmsg", "times", "delay", "http_status", "body"}
        if not body.get("path") or set(body) - allowed - {"path"}:
            return jsonify(error=f"need 'path' and only {sorted(allowed)}"), 400
        state.add_fault(body.pop("path"), **body)
        return jsonify(ok=True)

    @app.post("/_fake/expire-tokens")
    def expire_tokens() -> Response:
        state.expire_tokens()
        return jsonify(ok=True)


class _QuietHandler(WSGIRequestHandler):
    """No access log: tests read `/_fake/calls` instead."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _KeepAliveHandler(_QuietHandler):
    """HTTP/1.1 keep-alive, as api.weixin.qq.com offers: werkzeug's own handler closes every
    connection (it cannot drain a body the app left unread), so this one reads each request's
    body (`Content-Length`) before the app runs and keeps the connection for the next request.
    A chunked body, or a client asking for `Connection: close`, still closes it."""

    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes: without this, Nagle's algorithm holds the
        # body until the client's delayed ACK (40 ms) on a kept connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def run_wsgi(self) -> None:
        if self.headers.get("Transfer-Encoding"):
            self._keep = False
            return super().run_wsgi()
        length = int(self.headers.get("Content-Length") or 0)
        self._keep = self.headers.get("Connection", "").lower() != "close"
        real, self.rfile = self.rfile, io.BytesIO(self.rfile.read(length) if length else b"")
        try:
            super().run_wsgi()
        finally:
            self.rfile = real

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and self._keep:
            return  # werkzeug always says close; this handler keeps the connection
        super().send_header(keyword, value)


class FakeWeChatServer:
    """The fake on 127.0.0.1 in a background thread; port 0 picks a free port."""

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        quiet: bool = True,
        keep_alive: bool = True,
        **app_options: Any,
    ) -> None:
        self.app = create_fake_wechat_app(**app_options)
        self._handler: type[WSGIRequestHandler] = (
            _KeepAliveHandler if keep_alive else _QuietHandler if quiet else WSGIRequestHandler
        )
        self.state: FakeWeChatState = self.app.extensions["fake_wechat"]
        self._host = host
        self._port = port
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeWeChatServer is not started")
        return self._server.server_port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}/"

    def start(self) -> FakeWeChatServer:
        self._server = make_server(
            self._host, self._port, self.app, threaded=True, request_handler=self._handler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-wechat", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    # Test controls, same as the /_fake/ endpoints.
    def reset(self) -> None:
        self.state.reset()

    def calls(self, path: str | None = None) -> list[dict[str, Any]]:
        return self.state.list_calls(path)

    def add_fault(self, path: str, **fault: Any) -> None:
        self.state.add_fault(path, **fault)

    def expire_tokens(self) -> None:
        self.state.expire_tokens()

    def __enter__(self) -> FakeWeChatServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_fake_wechat(port: int = 5100, host: str = "127.0.0.1") -> None:
    """Serve the fake in the foreground until interrupted (`e-rescue fake-wechat --port N`)."""
    make_server(host, port, create_fake_wechat_app(), threaded=True).serve_forever()
