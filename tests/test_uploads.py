"""Photo uploads: content decides the type, bombs and broken files are refused, every bit of
metadata is removed, photos are scaled and stored once, and only their owner (or the center)
can see them."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from server.models import Photo
from server.services.applications.photos import photo_key
from tests.builders import error_code
from tests.builders.uploads import make_jpeg, upload

GPS_IFD = 0x8825
ORIENTATION = 0x0112


# --- builders -------------------------------------------------------------------------------


def make_png(*, size=(400, 300), color=(10, 120, 200, 255), mode: str = "RGBA") -> bytes:
    im = Image.new(mode, size, color)
    out = io.BytesIO()
    im.save(out, "PNG")
    return out.getvalue()


def gps_exif(*, orientation: int = 1) -> Image.Exif:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "PhoneMaker"  # Make
    exif[GPS_IFD] = {1: "N", 2: (36.0, 29.0, 50.0), 3: "E", 4: (117.0, 51.0, 30.0)}
    return exif


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width`×`height` pixels (a decompression bomb)."""
    raw = bytearray(make_png(size=(1, 1)))
    ihdr = struct.pack(">II", width, height) + bytes(raw[24:29])
    raw[16:29] = ihdr
    raw[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return bytes(raw)


def stored(runtime, photo_id: int, db, *, thumbnail: bool = False) -> Image.Image:
    photo = db.get(Photo, photo_id)
    data = runtime.storage.get(photo_key(photo.sha256, thumbnail=thumbnail))
    return Image.open(io.BytesIO(data))


# --- accepted photos ------------------------------------------------------------------------


def test_a_jpeg_is_accepted_and_described(client, resident_login):
    resp = upload(client, resident_login("alice"), make_jpeg(size=(800, 600)))
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert (body["width"], body["height"]) == (800, 600)
    assert body["bytes"] > 0 and body["id"] > 0


def test_helper_may_upload(client, resident_login, db):
    from server.models import Role, User, Village

    login = resident_login("hank")
    village = Village(code="up-v1", name="上传测试村", town_id=1)
    db.add(village)
    db.flush()
    user = db.get(User, login.user_id)
    user.role, user.village_id = Role.HELPER, village.id
    db.commit()
    assert upload(client, login, make_jpeg()).status_code == 201


def test_only_town_and_center_staff_upload_papers_for_the_window(client, staff_login):
    for role, status in (("center_staff", 201), ("leader", 403), ("department_staff", 403)):
        assert upload(client, staff_login(role=role), make_jpeg()).status_code == status


def test_gps_and_all_exif_are_removed(client, resident_login, runtime, db):
    resp = upload(client, resident_login(), make_jpeg(exif=gps_exif()))
    assert resp.status_code == 201
    for thumbnail in (False, True):
        im = stored(runtime, resp.get_json()["id"], db, thumbnail=thumbnail)
        assert len(im.getexif()) == 0
        assert "exif" not in im.info and "icc_profile" not in im.info


def test_exif_orientation_is_applied(client, resident_login):
    """A portrait photo taken sideways (orientation 6) is stored upright: sides swapped."""
    resp = upload(
        client, resident_login(), make_jpeg(size=(800, 600), exif=gps_exif(orientation=6))
    )
    assert (resp.get_json()["width"], resp.get_json()["height"]) == (600, 800)


def test_longest_side_is_scaled_to_2000_and_thumbnail_to_320(client, resident_login, runtime, db):
    resp = upload(client, resident_login(), make_jpeg(size=(4000, 3000)))
    assert (resp.get_json()["width"], resp.get_json()["height"]) == (2000, 1500)
    assert stored(runtime, resp.get_json()["id"], db).size == (2000, 1500)
    assert stored(runtime, resp.get_json()["id"], db, thumbnail=True).size == (320, 240)


def test_stored_photo_is_a_jpeg_whatever_came_in(client, resident_login, runtime, db):
    resp = upload(client, resident_login(), make_png(mode="RGB", color=(1, 2, 3)), "x.png")
    im = stored(runtime, resp.get_json()["id"], db)
    assert im.format == "JPEG" and im.mode == "RGB"


def test_png_alpha_is_flattened_on_white(client, resident_login, runtime, db):
    resp = upload(client, resident_login(), make_png(color=(0, 0, 0, 0)), "clear.png")
    assert resp.status_code == 201
    im = stored(runtime, resp.get_json()["id"], db)
    assert im.mode == "RGB"
    assert all(c > 245 for c in im.getpixel((10, 10)))


def test_cmyk_jpeg_is_converted_to_rgb(client, resident_login, runtime, db):
    resp = upload(client, resident_login(), make_jpeg(mode="CMYK", color=(0, 255, 255, 0)))
    assert resp.status_code == 201
    im = stored(runtime, resp.get_json()["id"], db)
    assert im.mode == "RGB"
    r, g, b = im.getpixel((5, 5))
    assert r > 200 and g < 60 and b < 60  # still red


def test_same_photo_twice_is_stored_once(client, resident_login, runtime, db):
    """Dedupe is by the hash of the processed JPEG: one file on disk, one row per owner."""
    login = resident_login()
    content = make_jpeg(color=(9, 9, 9))
    first, second = upload(client, login, content), upload(client, login, content)
    assert first.get_json()["id"] == second.get_json()["id"]
    other = upload(client, resident_login("bob"), content)
    assert other.get_json()["id"] != first.get_json()["id"]
    digest = db.get(Photo, first.get_json()["id"]).sha256
    assert db.get(Photo, other.get_json()["id"]).sha256 == digest
    assert sorted(runtime.storage.keys(f"{digest[:2]}/{digest}")) == [
        f"{digest[:2]}/{digest}.jpg",
        f"{digest[:2]}/{digest}_thumb.jpg",
    ]


# --- refused files --------------------------------------------------------------------------


def test_truncated_jpeg_is_refused(client, resident_login):
    content = make_jpeg(size=(800, 600))
    resp = upload(client, resident_login(), content[: len(content) // 2])
    assert resp.status_code == 422
    assert error_code(resp) == "photo_corrupt"
    assert "损坏" in resp.get_json()["message"]


def test_a_script_named_jpg_is_refused(client, resident_login):
    script = b"#!/bin/sh\nrm -rf / --no-preserve-root\n"
    resp = upload(client, resident_login(), script, "photo.jpg", "image/jpeg")
    assert resp.status_code == 422
    assert error_code(resp) == "photo_unsupported"
    assert "JPG或PNG" in resp.get_json()["message"]


def test_text_is_refused(client, resident_login):
    resp = upload(client, resident_login(), "我的申请材料".encode(), "note.png", "image/png")
    assert error_code(resp) == "photo_unsupported"


def test_other_image_formats_are_refused(client, resident_login):
    out = io.BytesIO()
    Image.new("RGB", (50, 50)).save(out, "GIF")
    resp = upload(client, resident_login(), out.getvalue(), "a.jpg", "image/jpeg")
    assert error_code(resp) == "photo_unsupported"


@pytest.mark.parametrize(("width", "height"), [(30000, 30000), (8000, 7000)])
def test_decompression_bomb_is_refused_before_decoding(client, resident_login, width, height):
    """Over 50 megapixels by the header alone: refused without decoding a pixel."""
    bomb = png_claiming(width, height)
    assert len(bomb) < 200
    resp = upload(client, resident_login(), bomb, "bomb.png", "image/png")
    assert resp.status_code == 422
    assert error_code(resp) == "photo_too_many_pixels"


def test_a_png_too_large_once_decoded_is_refused_before_decoding(client, resident_login):
    """7000×7000 RGBA is under 50 megapixels but 196 MB decoded (pixels × bands)."""
    resp = upload(client, resident_login(), png_claiming(7000, 7000), "big.png", "image/png")
    assert resp.status_code == 422
    assert error_code(resp) == "photo_too_large_decoded" and "64 MB" in resp.get_json()["message"]


def test_a_large_jpeg_is_bounded_by_its_reduced_scale_decode(client, resident_login):
    """A JPEG is decoded at 1/2–1/8 scale (draft): 6000×4500 RGB costs ≈ 20 MB, accepted."""
    resp = upload(client, resident_login(), make_jpeg(size=(6000, 4500)))
    assert resp.status_code == 201, resp.get_json()


def test_a_multi_picture_jpeg_is_accepted_as_its_first_picture(client, resident_login, runtime, db):
    out = io.BytesIO()
    first, second = Image.new("RGB", (640, 480), (220, 20, 20)), Image.new("RGB", (640, 480))
    first.save(out, "MPO", save_all=True, append_images=[second])
    resp = upload(client, resident_login(), out.getvalue())
    assert resp.status_code == 201, resp.get_json()
    r, g, b = stored(runtime, resp.get_json()["id"], db).convert("RGB").getpixel((320, 240))
    assert r > 180 and g < 60 and b < 60


def test_while_every_decode_turn_is_taken_an_upload_is_answered_503(
    client, resident_login, monkeypatch
):
    from server.services.applications import photos

    monkeypatch.setattr(photos, "DECODE_WAIT_SECONDS", 0.05)
    login = resident_login()
    taken = [photos._DECODES.acquire(timeout=1) for _ in range(photos.MAX_CONCURRENT_DECODES)]
    try:
        assert all(taken)
        resp = upload(client, login, make_jpeg())
        assert resp.status_code == 503
        body = resp.get_json()
        assert body["code"] == "photos_busy" and body["message"] == "正在处理的照片较多，请稍后重试"
        assert resp.headers["Retry-After"] == str(photos.PhotosBusy.retry_after)
    finally:
        for _ in taken:
            photos._DECODES.release()
    assert upload(client, login, make_jpeg()).status_code == 201


def test_no_more_than_two_photos_are_decoded_at_once(resident_login, app, monkeypatch):
    """Eight uploads at once: the others wait their turn, none is refused."""
    import threading
    import time

    from server.services.applications import photos

    running, peak, lock = [0], [0], threading.Lock()
    real = photos._process

    def counted(content):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            time.sleep(0.05)
            return real(content)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(photos, "_process", counted)
    login = resident_login()
    codes: list[int] = []

    def send(i: int) -> None:
        with app.test_client() as own:
            codes.append(upload(own, login, make_jpeg(color=(i * 20, 80, 40))).status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes == [201] * 8 and peak[0] == photos.MAX_CONCURRENT_DECODES


def test_file_over_the_size_limit_is_413(client, resident_login, runtime):
    content = make_jpeg() + b"\0" * runtime.config.max_upload_bytes
    resp = upload(client, resident_login(), content)
    assert resp.status_code == 413
    assert error_code(resp) == "photo_too_large"
    assert "10MB" in resp.get_json()["message"]


def test_missing_file_is_422(client, resident_login):
    resp = client.post(
        "/api/v1/uploads", headers=resident_login().headers, content_type="multipart/form-data"
    )
    assert resp.status_code == 422


# --- who can see a photo --------------------------------------------------------------------


def test_owner_reads_photo_and_thumbnail(client, resident_login):
    login = resident_login()
    photo_id = upload(client, login, make_jpeg()).get_json()["id"]
    for suffix in ("", "/thumbnail"):
        resp = client.get(f"/api/v1/uploads/{photo_id}{suffix}", headers=login.headers)
        assert resp.status_code == 200
        assert resp.mimetype == "image/jpeg"
        assert Image.open(io.BytesIO(resp.data)).format == "JPEG"
        assert "no-store" in resp.headers["Cache-Control"]


def test_another_resident_gets_404(client, resident_login):
    photo_id = upload(client, resident_login("alice"), make_jpeg()).get_json()["id"]
    bob = resident_login("bob")
    for suffix in ("", "/thumbnail"):
        resp = client.get(f"/api/v1/uploads/{photo_id}{suffix}", headers=bob.headers)
        assert resp.status_code == 404


def test_staff_do_not_see_photos_outside_any_application(client, resident_login, staff_login):
    photo_id = upload(client, resident_login(), make_jpeg()).get_json()["id"]
    for role in ("center_staff", "town_staff", "leader"):
        resp = client.get(f"/api/v1/uploads/{photo_id}", headers=staff_login(role=role).headers)
        assert resp.status_code == 404


def test_unknown_photo_is_404(client, resident_login):
    assert client.get("/api/v1/uploads/999", headers=resident_login().headers).status_code == 404


def test_upload_is_audited(client, resident_login, db):
    from sqlalchemy import select

    from server.models import AuditEntry

    photo_id = upload(client, resident_login(), make_jpeg()).get_json()["id"]
    entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "photo.uploaded"))
    assert entry is not None and entry.target_id == photo_id


def test_large_sideways_photo_is_scaled_and_turned_upright(client, resident_login):
    """Draft decoding targets the final size in the file's own orientation, then turns it."""
    content = make_jpeg(size=(4000, 3000), exif=gps_exif(orientation=6))
    body = upload(client, resident_login(), content).get_json()
    assert (body["width"], body["height"]) == (1500, 2000)
