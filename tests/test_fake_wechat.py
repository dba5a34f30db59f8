"""The fake WeChat server itself, spoken to over plain HTTP as WeChat's clients would."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from server.wechat.fake_server import FakeWeChatServer, create_fake_wechat_app
from server.wechat.fake_state import check_field, fake_openid, fake_unionid, name_from_code

_package = __name__.rpartition(".")[0]
pytest_plugins = [f"{_package}.wechat_fixtures" if _package else "wechat_fixtures"]


def get(fake: FakeWeChatServer, endpoint: str, **params: Any) -> dict[str, Any]:
    return requests.get(fake.url + endpoint, params=params, timeout=5).json()


def post(fake: FakeWeChatServer, path: str, body: Any = None, **params: Any) -> dict[str, Any]:
    return requests.post(fake.url + path, json=body, params=params, timeout=5).json()


def stable_token(fake: FakeWeChatServer, force: bool = False, **overrides: Any) -> dict[str, Any]:
    body = {
        "grant_type": "client_credential",
        "appid": "wx1",
        "secret": "s",
        "force_refresh": force,
    }
    return post(fake, "cgi-bin/stable_token", {**body, **overrides})


def login(fake: FakeWeChatServer, code: str) -> dict[str, Any]:
    params = {"appid": "wx1", "secret": "s", "js_code": code, "grant_type": "authorization_code"}
    return get(fake, "sns/jscode2session", **params)


def subscribe(fake: FakeWeChatServer, token: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "touser": fake_openid("alice"),
        "template_id": "TPL1",
        "data": {"thing1": {"value": "申请已受理"}},
        **overrides,
    }
    return post(fake, "cgi-bin/message/subscribe/send", body, access_token=token)


# --- tokens ------------------------------------------------------------------------------------


def test_stable_token_is_reused_until_forced(wechat_fake: FakeWeChatServer) -> None:
    first = stable_token(wechat_fake)
    again = stable_token(wechat_fake)
    forced = stable_token(wechat_fake, force=True)

    assert first["expires_in"] == 7200 and first["access_token"] == again["access_token"]
    assert forced["access_token"] != first["access_token"]
    # Like WeChat, the previous token keeps working for a while after a forced refresh.
    assert subscribe(wechat_fake, first["access_token"])["errcode"] == 0


def test_classic_token_endpoint(wechat_fake: FakeWeChatServer) -> None:
    answer = get(
        wechat_fake, "cgi-bin/token", grant_type="client_credential", appid="a", secret="b"
    )
    assert subscribe(wechat_fake, answer["access_token"])["errcode"] == 0


def test_configured_appid_and_secret_are_checked() -> None:
    with FakeWeChatServer(appid="wx1", secret="s") as fake:
        assert "access_token" in stable_token(fake)
        assert stable_token(fake, appid="wx2")["errcode"] == 40013
        assert stable_token(fake, secret="nope")["errcode"] == 40125
        assert stable_token(fake, grant_type="password")["errcode"] == 40002


def test_unknown_revoked_and_expired_tokens(wechat_fake: FakeWeChatServer) -> None:
    assert subscribe(wechat_fake, "made-up")["errcode"] == 40001
    token = stable_token(wechat_fake)["access_token"]
    requests.post(wechat_fake.url + "_fake/expire-tokens", timeout=5)
    assert subscribe(wechat_fake, token)["errcode"] == 40001

    with FakeWeChatServer(expires_in=0) as short_lived:
        token = stable_token(short_lived)["access_token"]
        assert subscribe(short_lived, token)["errcode"] == 42001


# --- login -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "name"),
    [("user-alice-1", "alice"), ("user-alice-2", "alice"), ("alice", "alice"), ("a-b-c-7", "c")],
)
def test_name_from_code(code: str, name: str) -> None:
    assert name_from_code(code) == name


def test_login_rules(wechat_fake: FakeWeChatServer) -> None:
    alice = login(wechat_fake, "user-alice-1")
    uma = login(wechat_fake, "user-uma-1")

    assert alice["openid"] == fake_openid("alice") and "unionid" not in alice
    assert len(alice["openid"]) == 28 and alice["openid"].startswith("o")
    assert uma["unionid"] == fake_unionid("uma")
    assert login(wechat_fake, "user-alice-1")["errcode"] == 40163
    assert login(wechat_fake, "")["errcode"] == 41008
    assert login(wechat_fake, "bad")["errcode"] == 40029


# --- subscribe messages ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("thing1", "二十个字以内的事项", None),
        ("thing1", "x" * 21, "exceeds limit"),
        ("thing1", "", "is empty"),
        ("thing1", "第一行\n第二行", "contains invalid characters"),
        ("phrase2", "已受理", None),
        ("phrase2", "已经受理了的", "exceeds limit"),
        ("phrase2", "ok", "invalid"),
        ("character_string3", "BS-2026-000123", None),
        ("character_string3", "编号123", "invalid"),
        ("character_string3", "A" * 33, "exceeds limit"),
        ("name4", "张三", None),
        ("name4", "张" * 11, "exceeds limit"),
        ("number5", "12.5", None),
        ("number5", "12a", "invalid"),
        ("letter6", "abc", None),
        ("phone_number7", "0533-4181234", None),
        ("phone_number7", "1" * 18, "exceeds limit"),
        ("time8", "2026年11月28日 15:01", None),
        ("time8", "15:01", None),
        ("time8", "2026年11月28日 09:00 ~ 2026年11月28日 17:00", None),
        ("time8", "tomorrow", "invalid"),
        ("amount9", "¥120.50", None),
        ("mystery10", "x", "unknown keyword"),
    ],
)
def test_field_rules(key: str, value: str, problem: str | None) -> None:
    assert check_field(key, value) == problem


def test_subscribe_send(wechat_fake: FakeWeChatServer) -> None:
    token = stable_token(wechat_fake)["access_token"]

    ok = subscribe(wechat_fake, token, page="pages/index/index")
    too_long = subscribe(wechat_fake, token, data={"thing1": {"value": "x" * 21}})

    assert ok["errcode"] == 0 and ok["errmsg"] == "ok" and isinstance(ok["msgid"], int)
    assert too_long["errcode"] == 47003
    assert too_long["errmsg"].startswith("argument invalid! data.thing1.value")
    assert subscribe(wechat_fake, token, touser="someone")["errcode"] == 40003
    assert subscribe(wechat_fake, token, template_id="bad-tpl")["errcode"] == 40037
    assert subscribe(wechat_fake, token, page="/pages/index/index")["errcode"] == 41030


def test_configured_templates_are_enforced() -> None:
    with FakeWeChatServer(templates={"TPL1"}) as fake:
        token = stable_token(fake)["access_token"]
        assert subscribe(fake, token)["errcode"] == 0
        assert subscribe(fake, token, template_id="TPL2")["errcode"] == 40037


# --- codes and phone numbers -------------------------------------------------------------------


def test_wxacode(wechat_fake: FakeWeChatServer) -> None:
    token = stable_token(wechat_fake)["access_token"]
    url = wechat_fake.url + "wxa/getwxacodeunlimit"

    image = requests.post(url, params={"access_token": token}, json={"scene": "v=1"}, timeout=5)
    no_token = requests.post(url, json={"scene": "v=1"}, timeout=5)

    assert image.headers["Content-Type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    assert no_token.json()["errcode"] == 40001


def test_phone_number(wechat_fake: FakeWeChatServer) -> None:
    token = stable_token(wechat_fake)["access_token"]

    given = post(
        wechat_fake,
        "wxa/business/getuserphonenumber",
        {"code": "p-13800138000"},
        access_token=token,
    )
    derived = post(
        wechat_fake, "wxa/business/getuserphonenumber", {"code": "p-alice-1"}, access_token=token
    )

    assert given["phone_info"]["phoneNumber"] == "13800138000"
    assert given["phone_info"]["countryCode"] == "86"
    assert given["phone_info"]["watermark"]["appid"] == "wx1"
    assert len(derived["phone_info"]["purePhoneNumber"]) == 11


# --- test controls -----------------------------------------------------------------------------


def test_calls_are_recorded(wechat_fake: FakeWeChatServer) -> None:
    login(wechat_fake, "user-alice-1")
    stable_token(wechat_fake)

    calls = get(wechat_fake, "_fake/calls")["calls"]
    only_login = get(wechat_fake, "_fake/calls", path="sns/jscode2session")["calls"]

    assert [c["path"] for c in calls] == ["sns/jscode2session", "cgi-bin/stable_token"]
    assert calls[0]["method"] == "GET" and calls[0]["query"]["js_code"] == "user-alice-1"
    assert calls[1]["json"]["grant_type"] == "client_credential" and calls[1]["time"]
    assert len(only_login) == 1


def test_faults_apply_the_given_number_of_times(wechat_fake: FakeWeChatServer) -> None:
    fault = {"path": "sns/jscode2session", "errcode": -1, "errmsg": "system error", "times": 2}
    assert post(wechat_fake, "_fake/faults", fault) == {"ok": True}

    answers = [login(wechat_fake, f"user-alice-{n}") for n in range(3)]

    assert [a.get("errcode") for a in answers] == [-1, -1, None]


def test_http_status_body_and_delay_faults(wechat_fake: FakeWeChatServer) -> None:
    post(wechat_fake, "_fake/faults", {"path": "/cgi-bin/stable_token", "http_status": 502})
    post(wechat_fake, "_fake/faults", {"path": "cgi-bin/stable_token", "body": "<html>"})
    post(wechat_fake, "_fake/faults", {"path": "cgi-bin/stable_token", "delay": 0.3})
    body = {"grant_type": "client_credential", "appid": "wx1", "secret": "s"}
    url = wechat_fake.url + "cgi-bin/stable_token"

    assert requests.post(url, json=body, timeout=5).status_code == 502
    assert requests.post(url, json=body, timeout=5).text == "<html>"
    started = time.monotonic()
    assert "access_token" in requests.post(url, json=body, timeout=5).json()
    assert time.monotonic() - started >= 0.3


def test_bad_fault_requests_are_refused(wechat_fake: FakeWeChatServer) -> None:
    url = wechat_fake.url + "_fake/faults"
    assert requests.post(url, json={"errcode": 1}, timeout=5).status_code == 400
    assert requests.post(url, json={"path": "x", "colour": 1}, timeout=5).status_code == 400


def test_reset_forgets_everything(wechat_fake: FakeWeChatServer) -> None:
    token = stable_token(wechat_fake)["access_token"]
    login(wechat_fake, "user-alice-1")
    post(wechat_fake, "_fake/faults", {"path": "sns/jscode2session", "errcode": -1})

    assert post(wechat_fake, "_fake/reset") == {"ok": True}

    assert get(wechat_fake, "_fake/calls")["calls"] == []
    assert login(wechat_fake, "user-alice-1")["openid"] == fake_openid("alice")
    assert subscribe(wechat_fake, token)["errcode"] == 40001


def test_server_lifecycle() -> None:
    app = create_fake_wechat_app()
    assert app.extensions["fake_wechat"].calls == []  # building the app starts nothing

    fake = FakeWeChatServer()
    with pytest.raises(RuntimeError):
        _ = fake.url
    with fake:
        url = fake.url
        assert url.endswith(f":{fake.port}/") and fake.port > 0
        assert requests.get(url + "_fake/calls", timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "_fake/calls", timeout=5)
