"""While the database is unreachable every answer is 503 in the one error shape (not a 500
after the first), and the service recovers by itself when the database returns.

PostgreSQL is cut with a small TCP proxy between the app and the server (existing connections
are reset, new ones refused); SQLite by putting a directory where its file was (the file
cannot be opened)."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from server import create_app

CUT_REQUESTS = 5


class TcpProxy:
    """Forwards 127.0.0.1:<port> to `target`; `cut()` resets every connection and refuses
    new ones until `restore()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open.is_set():
                _reset(client)
                continue
            upstream = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.open.clear()
        with self.lock:
            sockets, self.sockets = self.sockets, []
        for s in sockets:
            _reset(s)

    def restore(self) -> None:
        self.open.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


def _reset(sock: socket.socket) -> None:
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        sock.close()
    except OSError:
        pass


class Outage:
    """Cut the database off from a second app on the test database, and bring it back."""

    def __init__(self, app, cut, restore) -> None:  # noqa: ANN001
        self.app, self.cut, self.restore = app, cut, restore


@pytest.fixture
def outage(config, engine_name, app) -> Iterator[Outage]:  # noqa: ANN001
    """`app` (the session's) has built the schema; this app reaches the same data through a
    way we can cut."""
    if engine_name == "postgresql":
        url = make_url(config.database_url)
        proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
        proxied = url.set(host="127.0.0.1", port=proxy.port)
        own = create_app(replace(config, database_url=proxied.render_as_string(False)))
        yield Outage(own, proxy.cut, proxy.restore)
        proxy.close()
    else:
        path = Path(make_url(config.database_url).database or "")
        own = create_app(config)
        runtime = own.extensions["e_rescue"]
        aside = path.with_name(path.name + ".aside")
        names = ("", "-wal", "-shm")

        def cut() -> None:
            # A directory where the file was: SQLite cannot open it. Connections already open
            # keep the file they opened (as the session's app does), so this app's pools are
            # emptied, as in a process started during the outage.
            for suffix in names:
                if Path(f"{path}{suffix}").exists():
                    os.replace(f"{path}{suffix}", f"{aside}{suffix}")
            path.mkdir()
            runtime.engine.dispose()
            runtime.read_engine.dispose()

        def restore() -> None:
            path.rmdir()
            for suffix in names:
                if Path(f"{aside}{suffix}").exists():
                    os.replace(f"{aside}{suffix}", f"{path}{suffix}")

        yield Outage(own, cut, restore)
        runtime.dispose()
    own.extensions["e_rescue"].dispose()


def _asks(client, login) -> list:  # noqa: ANN001
    """A read through the login check, a read-only hot view, and a write."""
    return [
        client.get("/api/v1/me", headers=login.headers),
        client.get("/api/v1/leads", headers=login.headers),
        client.post("/api/v1/auth/staff-login", json={"username": "x", "password": "y"}),
    ]


def test_while_the_database_is_unreachable_every_answer_is_503_and_it_recovers_alone(
    outage, staff_login
):
    login = staff_login()
    client = outage.app.test_client()
    assert [r.status_code for r in _asks(client, login)] == [200, 200, 401]
    outage.cut()
    try:
        answers = [r for _ in range(CUT_REQUESTS) for r in _asks(client, login)]
    finally:
        outage.restore()
    assert {r.status_code for r in answers} == {503}, [r.status_code for r in answers]
    for answer in answers:
        body = answer.get_json()
        assert body["code"] == "unavailable" and body["message"] and body["request_id"]
        assert answer.headers["Retry-After"]
    back = _asks(client, login)
    # The first request after the return may meet a connection the pool still held: 503 once
    # at most, then every answer is normal again without a restart.
    if 503 in {r.status_code for r in back}:
        back = _asks(client, login)
    assert [r.status_code for r in back] == [200, 200, 401]


def test_while_the_database_is_unreachable_a_console_page_is_a_chinese_503_page_and_recovers(
    outage, staff
):
    from tests.console_helpers import console_login

    client = outage.app.test_client()
    console_login(client, staff(), "correct-horse-9")
    assert client.get("/console/leads").status_code == 200
    outage.cut()
    try:
        answers = [client.get("/console/leads") for _ in range(CUT_REQUESTS)]
    finally:
        outage.restore()
    assert [r.status_code for r in answers] == [503] * CUT_REQUESTS
    for answer in answers:
        assert answer.mimetype == "text/html"
        assert "系统暂时无法连接数据库，请稍后刷新重试" in answer.get_data(as_text=True)
        assert answer.headers["Retry-After"]
    back = client.get("/console/leads")
    if back.status_code == 503:  # a connection the pool still held, once at most
        back = client.get("/console/leads")
    assert back.status_code == 200 and back.mimetype == "text/html"
