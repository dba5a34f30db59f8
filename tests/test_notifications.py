"""Notifications: template fields within WeChat's limits, one message per change, the inbox,
subscriptions, outbox health, and WeChat's own subscription events at /wechat/callback."""

from __future__ import annotations

import hashlib
import json
import random
import time
from datetime import date, datetime

import pytest
from sqlalchemy import select
from wechatpy.crypto import WeChatCrypto

from server import clock
from server.models import InboxMessage, OutboxMessage, Subscription, User
from server.services.notifications.messages import ELLIPSIS, format_field
from server.wechat.fake_state import check_field, fake_openid
from server.worker import outbox
from tests.builders import dispatches as slips
from tests.builders.applications import (
    application_body,
    file,
    make_helper,
    on_behalf,
    photo_id,
    village,
)

at_time = slips.at_time

# --- field rules -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("keyword", "value", "expected"),
    [
        ("thing1", "一" * 20, "一" * 20),
        ("thing1", "一" * 21, "一" * 19 + ELLIPSIS),
        ("thing1", "第一行\n第二行", "第一行 第二行"),
        ("name2", "张" * 10, "张" * 10),
        ("name2", "张" * 11, "张" * 9 + ELLIPSIS),
        ("phrase3", "调查核实中", "调查核实中"),
        ("phrase3", "正在调查核实中", "正在调查核"),
        ("phrase3", "OK已办结", "已办结"),
        ("character_string4", "A" * 32, "A" * 32),
        ("character_string4", "A" * 33, "A" * 32),
        ("character_string4", "SQ 0001", "SQ0001"),
        ("number5", "1,234", "1234"),
        ("number5", "9" * 40, "9" * 32),
    ],
)
def test_fields_are_cut_to_wechats_limits(keyword, value, expected):
    formatted = format_field(keyword, value)
    assert formatted == expected
    assert check_field(keyword, formatted) is None, "the fake WeChat server accepts it"


def test_times_and_dates_use_wechats_format():
    assert format_field("time1", datetime(2026, 11, 28, 15, 1)) == "2026年11月28日 15:01"
    assert format_field("date2", date(2026, 11, 28)) == "2026年11月28日"
    assert check_field("time1", format_field("time1", datetime(2026, 11, 28, 15, 1))) is None


@pytest.mark.parametrize("keyword", ["thing1", "name1", "phrase1", "character_string1"])
def test_random_text_always_fits_its_field(keyword):
    rng = random.Random(keyword)
    alphabet = "困难群众救助申请ABCxyz 123\t\n，。！"
    for _ in range(200):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 60)))
        assert check_field(keyword, format_field(keyword, text)) is None, text


# --- one message per change, to whoever filed ------------------------------------------------


@pytest.fixture
def alice(client, resident_login, db):
    village(db)
    return resident_login("alice")


def _file(client, login, **overrides):
    body = application_body(photos=[photo_id(client, login)], **overrides)
    resp = file(client, login, body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()["id"]


def test_filing_queues_a_received_message_and_an_inbox_entry(client, alice, db):
    _file(client, alice)
    message = db.scalar(select(OutboxMessage))
    assert message.event == "received" and message.user_id == alice.user_id
    assert message.page.startswith("pages/detail/detail?id=")
    for key, value in message.data.items():
        assert check_field(key, value) is None
    inbox = client.get("/api/v1/messages", headers=alice.headers).get_json()
    assert inbox["unread"] == 1 and inbox["items"][0]["title"] == "申请已提交"


def test_each_step_queues_one_message_and_the_result_carries_the_outcome(
    client, alice, db, staff_login
):
    application_id = _file(client, alice)
    center = staff_login()
    base = f"/api/v1/applications/{application_id}"
    client.post(f"{base}/accept", headers=center.headers)
    client.post(f"{base}/investigate", headers=center.headers)
    client.post(
        f"{base}/decide",
        headers=center.headers,
        json={"outcome": "not_eligible", "reason": "家庭收入高于当地低保标准"},
    )
    events = db.scalars(select(OutboxMessage.event).order_by(OutboxMessage.id)).all()
    assert events == ["received", "status", "status", "result"]
    result = db.scalar(select(OutboxMessage).where(OutboxMessage.event == "result"))
    assert result.data["thing3"].startswith("不符合条件")
    assert len(result.data["thing3"]) <= 20


def test_a_helpers_filing_is_reported_to_the_helper(client, resident_login, db):
    helper = make_helper(db, resident_login("hank"))
    _file(client, helper, on_behalf=on_behalf())
    assert db.scalar(select(OutboxMessage.user_id)) == helper.user_id


def test_withdrawing_sends_nothing(client, alice, db):
    application_id = _file(client, alice)
    client.post(f"/api/v1/applications/{application_id}/withdraw", headers=alice.headers)
    assert db.scalars(select(OutboxMessage.event)).all() == ["received"]


def test_the_timeline_shows_a_skipped_message_as_not_subscribed(client, alice, db, runtime):
    application_id = _file(client, alice)
    outbox.deliver_due(
        runtime.session_factory, runtime.gateway, config=runtime.config, clock=clock.now
    )
    detail = client.get(f"/api/v1/applications/{application_id}", headers=alice.headers)
    assert detail.get_json()["timeline"][0]["notice"].startswith("未订阅微信通知")


def test_a_subscribed_resident_gets_the_message_through_wechat(
    client, alice, db, runtime, fake_wechat
):
    client.post(
        "/api/v1/subscriptions",
        headers=alice.headers,
        json={"results": {"tmpl-application-received": "accept"}},
    )
    application_id = _file(client, alice)
    outbox.deliver_due(
        runtime.session_factory, runtime.gateway, config=runtime.config, clock=clock.now
    )
    sent = fake_wechat.calls("cgi-bin/message/subscribe/send")
    openid = db.get(User, alice.user_id).openid
    assert [c["json"]["touser"] for c in sent] == [openid]
    assert sent[0]["json"]["page"] == f"pages/detail/detail?id={application_id}"
    detail = client.get(f"/api/v1/applications/{application_id}", headers=alice.headers)
    assert detail.get_json()["timeline"][0]["notice"] == "已通过微信通知"


# --- subscriptions, inbox, stats -------------------------------------------------------------


def test_the_mini_program_learns_which_templates_to_ask_for(client, alice):
    templates = client.get("/api/v1/subscriptions/templates", headers=alice.headers).get_json()
    assert {t["event"] for t in templates} == {"received", "status", "result", "revisit"}


def test_each_acceptance_adds_one_send_and_a_rejection_clears_them(client, alice, db):
    def answer(value):
        return client.post(
            "/api/v1/subscriptions",
            headers=alice.headers,
            json={"results": {"tmpl-application-status": value, "unknown-template": "accept"}},
        ).get_json()

    answer("accept")
    assert answer("accept") == [
        {
            "template_id": "tmpl-application-status",
            "status": "accept",
            "quota": 2,
            "long_term": False,
        }
    ]
    assert answer("reject")[0]["quota"] == 0


def test_a_bad_subscription_answer_is_refused(client, alice):
    resp = client.post(
        "/api/v1/subscriptions",
        headers=alice.headers,
        json={"results": {"tmpl-application-status": "maybe"}},
    )
    assert resp.status_code == 422


def test_staff_cannot_record_subscriptions(client, staff_login):
    resp = client.post(
        "/api/v1/subscriptions",
        headers=staff_login().headers,
        json={"results": {"tmpl-application-status": "accept"}},
    )
    assert resp.status_code == 403


def test_inbox_marks_read_and_hides_other_peoples_messages(client, alice, db, resident_login):
    _file(client, alice)
    message_id = db.scalar(select(InboxMessage.id))
    bob = resident_login("bob")
    assert client.get("/api/v1/messages", headers=bob.headers).get_json()["total"] == 0
    path = f"/api/v1/messages/{message_id}/read"
    assert client.post(path, headers=bob.headers).status_code == 404
    assert client.post(path, headers=alice.headers).get_json()["read_at"] is not None
    inbox = client.get("/api/v1/messages?unread=true", headers=alice.headers).get_json()
    assert inbox["total"] == 0 and inbox["unread"] == 0


def test_outbox_stats_for_center_staff_only(client, alice, staff_login):
    _file(client, alice)
    stats = client.get("/api/v1/outbox/stats", headers=staff_login().headers).get_json()
    assert stats["pending"] == 1 and stats["oldest_pending_seconds"] >= 0
    for login in (alice, staff_login(role="town_staff"), staff_login(role="leader")):
        assert client.get("/api/v1/outbox/stats", headers=login.headers).status_code == 403


def test_messages_need_a_login(client):
    assert client.get("/api/v1/messages").status_code == 401


# --- WeChat's server push --------------------------------------------------------------------

TOKEN = "fake-callback-token"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"  # 43 characters, as WeChat issues


def _signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def _ts() -> str:
    """Now, as WeChat stamps a push (pushes older than 5 minutes are refused)."""
    return str(int(clock.now().timestamp()))


def _popup_xml(openid: str, template_id: str, status: str) -> str:
    return (
        f"<xml><ToUserName>gh_x</ToUserName><FromUserName>{openid}</FromUserName>"
        "<CreateTime>1764300000</CreateTime><MsgType>event</MsgType>"
        "<Event>subscribe_msg_popup_event</Event><SubscribeMsgPopupEvent><List>"
        f"<TemplateId>{template_id}</TemplateId><SubscribeStatusString>{status}"
        "</SubscribeStatusString><PopupScene>0</PopupScene></List></SubscribeMsgPopupEvent></xml>"
    )


def test_the_callback_url_check_echoes_only_when_signed(client):
    sig = _signature(TOKEN, "1764300000", "n1")
    ok = client.get(f"/wechat/callback?signature={sig}&timestamp=1764300000&nonce=n1&echostr=hi")
    assert ok.status_code == 200 and ok.data == b"hi"
    bad = client.get("/wechat/callback?signature=x&timestamp=1764300000&nonce=n1&echostr=hi")
    assert bad.status_code == 403 and bad.get_json()["code"] == "bad_signature"


def test_a_signed_popup_event_records_the_acceptance(client, alice, db):
    ts = _ts()
    sig = _signature(TOKEN, ts, "n2")
    resp = client.post(
        f"/wechat/callback?signature={sig}&timestamp={ts}&nonce=n2",
        data=_popup_xml(db.get(User, alice.user_id).openid, "tmpl-application-result", "accept"),
        content_type="text/xml",
    )
    assert resp.status_code == 200 and resp.data == b"success"
    row = db.scalar(select(Subscription))
    assert (row.template_id, row.status.value, row.quota) == (
        "tmpl-application-result",
        "accept",
        1,
    )


def test_an_unsigned_push_is_refused_and_changes_nothing(client, alice, db):
    resp = client.post(
        "/wechat/callback?signature=forged&timestamp=1&nonce=n",
        data=_popup_xml(fake_openid("alice"), "tmpl-application-result", "accept"),
        content_type="text/xml",
    )
    assert resp.status_code == 403
    assert db.scalar(select(Subscription)) is None


def test_a_safe_mode_json_change_event_is_decrypted_and_applied(client, alice, db, app):
    client.post(
        "/api/v1/subscriptions",
        headers=alice.headers,
        json={"results": {"tmpl-application-result": "accept"}},
    )
    config = app.extensions["e_rescue"].config
    crypto = WeChatCrypto(TOKEN, AES_KEY, config.wechat_appid)
    payload = json.dumps(
        {
            "ToUserName": "gh_x",
            "FromUserName": db.get(User, alice.user_id).openid,
            "Event": "subscribe_msg_change_event",
            "List": [{"TemplateId": "tmpl-application-result", "SubscribeStatusString": "reject"}],
        }
    )
    ts = _ts()
    envelope = crypto.encrypt_message(payload, "n3", ts)
    encrypted = envelope.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    msg_sig = _signature(TOKEN, ts, "n3", encrypted)
    sig = _signature(TOKEN, ts, "n3")
    app.extensions["e_rescue"].config = config.with_overrides(wechat_callback_aes_key=AES_KEY)
    try:
        resp = client.post(
            f"/wechat/callback?encrypt_type=aes&msg_signature={msg_sig}&signature={sig}"
            f"&timestamp={ts}&nonce=n3",
            data=json.dumps({"ToUserName": "gh_x", "Encrypt": encrypted}),
            content_type="application/json",
        )
    finally:
        app.extensions["e_rescue"].config = config
    assert resp.status_code == 200, resp.get_json()
    db.expire_all()
    row = db.scalar(select(Subscription))
    assert (row.status.value, row.quota) == ("reject", 0)


def test_a_push_about_an_unknown_user_is_accepted_and_ignored(client, db):
    ts = _ts()
    sig = _signature(TOKEN, ts, "n4")
    resp = client.post(
        f"/wechat/callback?signature={sig}&timestamp={ts}&nonce=n4",
        data=_popup_xml(fake_openid("nobody"), "tmpl-application-result", "accept"),
        content_type="text/xml",
    )
    assert resp.status_code == 200
    assert db.scalar(select(User.id)) is None


def _push(client, body: bytes | str, *, ts: str | None = None, nonce: str = "n5", sig=None):
    ts = ts or _ts()
    sig = sig or _signature(TOKEN, ts, nonce)
    return client.post(
        f"/wechat/callback?signature={sig}&timestamp={ts}&nonce={nonce}",
        data=body,
        content_type="text/xml",
    )


def test_an_unsigned_push_of_1_4_mb_nested_xml_is_refused_without_parsing(client):
    body = "<xml>" + "<a>" * 200_000 + "</a>" * 200_000 + "</xml>"
    assert len(body) > 1_400_000
    started = time.perf_counter()
    resp = _push(client, body, sig="forged")
    assert resp.status_code == 403 and resp.get_json()["code"] == "bad_signature"
    assert time.perf_counter() - started < 0.5


def test_a_signed_push_larger_than_64_kb_is_refused(client):
    body = "<xml>" + "<a>" * 20_000 + "</a>" * 20_000 + "</xml>"
    resp = _push(client, body)
    assert resp.status_code == 413 and resp.get_json()["code"] == "push_too_large"


@pytest.mark.parametrize("offset", [-301, 301], ids=["too-old", "from-the-future"])
def test_a_push_stamped_more_than_5_minutes_away_is_refused(client, alice, db, offset, monkeypatch):
    # The server's clock stands still, so a slow machine cannot move the stamp back inside.
    moment = clock.now().replace(microsecond=0)
    monkeypatch.setattr(clock, "now", lambda: moment)
    ts = str(int(moment.timestamp()) + offset)
    body = _popup_xml(db.get(User, alice.user_id).openid, "tmpl-application-result", "accept")
    resp = _push(client, body, ts=ts)
    assert resp.status_code == 403 and resp.get_json()["code"] == "push_stale"
    assert db.scalar(select(Subscription)) is None


def test_a_replayed_push_is_refused_and_changes_nothing_more(client, alice, db):
    ts = _ts()
    body = _popup_xml(db.get(User, alice.user_id).openid, "tmpl-application-result", "accept")
    assert _push(client, body, ts=ts, nonce="once").status_code == 200
    again = _push(client, body, ts=ts, nonce="once")
    assert again.status_code == 403 and again.get_json()["code"] == "push_replayed"
    db.expire_all()
    assert db.scalar(select(Subscription)).quota == 1


def test_nonces_past_the_window_are_forgotten(client, db, at_time):
    from server.models import WeChatPushNonce

    at_time(2026, 12, 3, 9, 0)
    assert _push(client, "<xml><Event>x</Event></xml>", nonce="old").status_code == 200
    at_time(2026, 12, 3, 9, 11)
    assert _push(client, "<xml><Event>x</Event></xml>", nonce="new").status_code == 200
    db.expire_all()
    assert list(db.scalars(select(WeChatPushNonce.nonce))) == ["new"]
