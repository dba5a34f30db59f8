"""Service-point posters: an A4 PNG whose QR code opens the apply page with the village filled
in, printable by the town's staff, the center and the village's helpers only."""

from __future__ import annotations

import hashlib
import io
import math
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from sqlalchemy import delete, select

from server.models import ContactKind, PublicContact, Town, Village
from server.services.places import posters
from tests.builders import error_code
from tests.builders.applications import make_helper, village


def poster_path(code: str = "cd-001") -> str:
    return f"/api/v1/villages/{code}/poster.png"


@pytest.fixture
def villages(db):
    """cd-001 西冶街社区 in 城东 (chengdong) and bt-001 in 白塔 (baita)."""
    row = village(db, code="cd-001")
    row.name = "西冶街社区"
    db.commit()
    village(db, code="bt-001", town_id=db.scalar(select(Town.id).where(Town.code == "baita")))


def fetch(client, login, code: str = "cd-001", kind: str | None = None):
    query = f"?kind={kind}" if kind else ""
    return client.get(poster_path(code) + query, headers=login.headers)


#: The plain QR code's link under the development MINIPROGRAM_LINK_BASE.
LINK = "https://e-rescue.example.invalid/mp/apply?village=cd-001"


def decode(png: bytes) -> list[str]:
    return [found.text for found in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def test_the_poster_is_an_a4_png_at_300_dpi(client, villages, staff_login):
    resp = fetch(client, staff_login(role="town_staff", town="chengdong"))
    assert resp.status_code == 200
    assert resp.mimetype == "image/png"
    image = Image.open(io.BytesIO(resp.data))
    assert image.format == "PNG"
    assert image.size == (2480, 3508)
    assert image.height / image.width == pytest.approx(math.sqrt(2), rel=0.005)
    assert round(image.info["dpi"][0]) == 300


def test_the_poster_carries_wechats_code_of_the_apply_page_and_the_village_scene(
    client, villages, staff_login
):
    """The fake WeChat draws its 小程序码 as a QR code of `<page>?scene=<scene>` (a real one is a
    round code only WeChat reads), so the test can read what WeChat was asked for."""
    resp = fetch(client, staff_login())
    assert resp.headers["X-Code-Kind"] == "wxacode"
    assert decode(resp.data) == ["pages/apply/apply?scene=v=cd-001"]


def test_the_plain_qr_code_decodes_to_the_https_link_with_the_village_code(
    client, villages, staff_login
):
    resp = fetch(client, staff_login(), kind="link")
    assert resp.headers["X-Code-Kind"] == "link"
    assert decode(resp.data) == [LINK]


def test_without_wechat_the_poster_carries_the_plain_link_qr_code(
    client, villages, staff_login, fake_wechat
):
    fake_wechat.state.add_fault(
        "wxa/getwxacodeunlimit", errcode=45009, errmsg="reach max api daily quota limit"
    )
    resp = fetch(client, staff_login())
    assert resp.status_code == 200
    assert resp.headers["X-Code-Kind"] == "link"
    assert decode(resp.data) == [LINK]


def test_the_qr_code_follows_the_configured_apply_page(client, villages, staff_login, runtime):
    """The page comes from MINIPROGRAM_APPLY_PAGE, so a renamed page needs no code change."""
    original = runtime.config
    runtime.config = original.with_overrides(miniprogram_apply_page="pages/start/start")
    try:
        resp = fetch(client, staff_login())
    finally:
        runtime.config = original
    assert decode(resp.data) == ["pages/start/start?scene=v=cd-001"]


def content_of(db, code: str = "cd-001") -> posters.PosterContent:
    return posters.poster_content(
        db, code, actor=_center(), hotline="0533-9999999", page="pages/apply/apply"
    )


def test_the_poster_names_the_village_town_and_phones(client, villages, db):
    content = content_of(db)
    assert (content.village_name, content.town_name) == ("西冶街社区", "城东街道")
    assert content.town_phone == db.scalar(select(Town.phone).where(Town.code == "chengdong"))
    assert content.page == "pages/apply/apply?village=cd-001"


def test_the_hotline_is_the_one_the_center_keeps_in_the_public_contacts(
    client, villages, db, staff_login
):
    hotline = db.scalar(
        select(PublicContact).where(PublicContact.kind == ContactKind.DISTRICT_HOTLINE)
    )
    center = staff_login(role="center_staff")
    resp = client.patch(
        f"/api/v1/public/contacts/{hotline.id}",
        json={"phone": "0533-4186666"},
        headers=center.headers,
    )
    assert resp.status_code == 200, resp.get_json()
    assert content_of(db).hotline == "0533-4186666"


def test_without_a_public_hotline_the_configured_one_is_printed(client, villages, db):
    db.execute(delete(PublicContact).where(PublicContact.kind == ContactKind.DISTRICT_HOTLINE))
    db.commit()
    assert content_of(db).hotline == "0533-9999999"


def test_the_poster_is_drawn_with_the_packaged_chinese_font():
    """The CJK font ships with an installed package (no download); it has the glyphs we use."""
    from fontTools.ttLib import TTFont

    font = TTFont(io.BytesIO(posters.font_bytes()))
    cmap = font.getBestCmap()
    text = "博山e救助西冶街社区城东街道微信扫一扫在线申请社会救助服务热线不会操作？可请村（社区）"
    missing = [ch for ch in text if ord(ch) not in cmap]
    assert missing == []


def test_village_codes_with_reserved_characters_are_escaped_in_the_page():
    assert posters.apply_page("a&b=c", page="pages/apply/apply") == (
        "pages/apply/apply?village=a%26b%3Dc"
    )


def test_a_poster_is_drawn_once_per_content_and_redrawn_when_it_changes(
    client, villages, staff_login, db, runtime, monkeypatch
):
    drawn: list[str] = []
    real = posters.render_poster

    def counting(content, code=None):
        drawn.append(content.village_name)
        return real(content, code=code)

    monkeypatch.setattr(posters, "render_poster", counting)
    login = staff_login()
    first = fetch(client, login)
    second = fetch(client, login)
    assert first.data == second.data
    assert drawn == ["西冶街社区"]
    assert first.headers["ETag"]

    db.scalar(select(Village).where(Village.code == "cd-001")).name = "西冶街新社区"
    db.commit()
    third = fetch(client, login)
    assert drawn == ["西冶街社区", "西冶街新社区"]
    assert third.headers["ETag"] != first.headers["ETag"]
    cached = list((Path(runtime.config.upload_dir) / posters.CACHE_SUBDIR).glob("*.png"))
    assert len([p for p in cached if p.name.startswith(_prefix("cd-001"))]) == 1


def test_an_unchanged_poster_answers_304_to_its_etag(client, villages, staff_login):
    login = staff_login()
    etag = fetch(client, login).headers["ETag"]
    again = client.get(poster_path(), headers={**login.headers, "If-None-Match": etag})
    assert again.status_code == 304


# --- who may print it -------------------------------------------------------------------------


def test_town_staff_print_their_own_villages_poster(client, villages, staff_login):
    assert fetch(client, staff_login(role="town_staff", town="baita"), "bt-001").status_code == 200


def test_another_towns_village_is_404_for_town_staff(client, villages, staff_login):
    resp = fetch(client, staff_login(role="town_staff", town="chengdong"), "bt-001")
    assert resp.status_code == 404
    assert error_code(resp) == "village_not_found"


def test_the_center_prints_any_villages_poster(client, villages, staff_login):
    assert fetch(client, staff_login(role="center_staff"), "bt-001").status_code == 200


def test_a_helper_prints_their_own_villages_poster(client, villages, resident_login, db):
    helper = make_helper(db, resident_login("hank"), village_code="cd-001")
    resp = fetch(client, helper, "cd-001")
    assert resp.status_code == 200
    assert decode(resp.data) == ["pages/apply/apply?scene=v=cd-001"]


def test_a_helper_gets_404_for_another_village(client, villages, resident_login, db):
    helper = make_helper(db, resident_login("hank"), village_code="cd-001")
    assert fetch(client, helper, "bt-001").status_code == 404


@pytest.mark.parametrize("role", ["department_staff", "leader"])
def test_other_staff_roles_are_refused(client, villages, staff_login, role):
    resp = fetch(client, staff_login(role=role))
    assert resp.status_code == 403
    assert error_code(resp) == "forbidden"


def test_residents_are_refused(client, villages, resident_login):
    assert fetch(client, resident_login("rita")).status_code == 403


def test_without_login_it_is_401(client, villages):
    resp = client.get(poster_path())
    assert resp.status_code == 401
    assert error_code(resp) == "unauthorized"


def test_an_unknown_village_is_404(client, villages, staff_login):
    resp = fetch(client, staff_login(), "no-such-village")
    assert resp.status_code == 404
    assert error_code(resp) == "village_not_found"


# --- helpers ----------------------------------------------------------------------------------


def _center():
    from server.models import Role
    from server.services.kernel.access import Actor

    return Actor(user_id=None, role=Role.CENTER_STAFF)


def _prefix(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()[:12]
