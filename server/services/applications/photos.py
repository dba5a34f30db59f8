"""Photo uploads: decide the type from the content, refuse bombs and broken files, strip all
metadata, scale, re-encode as JPEG and store once by content hash (server/storage: local disk or
object storage). Photos never leave our storage.

Deduplication is by the SHA-256 of the *processed* JPEG: the stored object is named by it, so the
same picture uploaded twice (by anyone) is stored once, and the same owner gets the same row back.
Processing is deterministic, so identical input always gives identical output.
"""

from __future__ import annotations

import hashlib
import io
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import DomainError, NotFound, ValidationFailed
from server.models import (
    Application,
    ApplicationPhoto,
    Photo,
    ServicePhoto,
    ServiceRecord,
    Visit,
    VisitPhoto,
    VolunteerReport,
    VolunteerReportPhoto,
)
from server.services.kernel.access import Actor, scope_by_area
from server.services.kernel.audit import record, record_unmasked_view
from server.storage import ObjectMissing, Storage

ALLOWED_FORMATS = frozenset({"JPEG", "PNG"})
#: Multi-picture JPEGs (many phone cameras write them) are read as their first picture.
_OPENED_AS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG"}
#: Largest image we agree to decode (pixels); larger headers are refused before decoding.
MAX_PIXELS = 50_000_000
#: Largest decoded image (pixels × bands × bytes per band, after a JPEG's reduced-scale
#: decode): a 190 KB PNG of 7000×7000 RGBA is 196 MB decoded and cost 600 MB to process.
MAX_DECODED_BYTES = 64 * 1024 * 1024
#: Photos decoded at once per process, and how long an upload waits for its turn before it is
#: answered 503 (four 7000×7000 PNGs at once peaked at 2.6 GB).
MAX_CONCURRENT_DECODES = 2
DECODE_WAIT_SECONDS = 10.0
_DECODES = threading.BoundedSemaphore(MAX_CONCURRENT_DECODES)
#: Bytes per band of Pillow's modes (others: 1).
_BAND_BYTES = {"I": 4, "F": 4, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2}
#: Longest side of the stored photo and of its thumbnail.
MAX_SIDE = 2000
THUMB_SIDE = 320
JPEG_QUALITY = 85
THUMB_QUALITY = 80


class PhotoTooLarge(DomainError):
    status = 413
    code = "photo_too_large"
    message = "照片文件过大，请压缩后重新上传（不超过10MB）"


class PhotoUnsupported(ValidationFailed):
    code = "photo_unsupported"
    message = "只能上传JPG或PNG格式的照片"


class PhotoCorrupt(ValidationFailed):
    code = "photo_corrupt"
    message = "照片文件已损坏或不完整，请重新拍摄上传"


class PhotoTooManyPixels(ValidationFailed):
    code = "photo_too_many_pixels"
    message = "照片像素过大，无法处理，请缩小后重新上传"


class PhotoTooLargeDecoded(ValidationFailed):
    code = "photo_too_large_decoded"
    message = (
        f"照片解码后超过 {MAX_DECODED_BYTES >> 20} MB（像素 × 颜色通道），无法处理，"
        "请缩小尺寸或另存为 JPG 后重新上传"
    )


class PhotosBusy(DomainError):
    status = 503
    code = "photos_busy"
    message = "正在处理的照片较多，请稍后重试"
    #: A decode takes about a second; a client waits this long before trying again.
    retry_after = 2


@contextmanager
def decode_slot() -> Iterator[None]:
    """One of the process's MAX_CONCURRENT_DECODES turns to decode a photo; PhotosBusy (503)
    when none frees up within DECODE_WAIT_SECONDS."""
    if not _DECODES.acquire(timeout=DECODE_WAIT_SECONDS):
        raise PhotosBusy()
    try:
        yield
    finally:
        _DECODES.release()


def decoded_bytes(im: Image.Image) -> int:
    """What decoding `im` at its current size (after any draft) holds in memory."""
    width, height = im.size
    return width * height * len(im.getbands()) * _BAND_BYTES.get(im.mode, 1)


@dataclass(frozen=True, slots=True)
class Processed:
    jpeg: bytes
    thumbnail: bytes
    width: int
    height: int


def _fit(width: int, height: int, side: int) -> tuple[int, int]:
    """The size of (width, height) scaled down so the longest side is at most `side`."""
    longest = max(width, height)
    if longest <= side:
        return width, height
    scale = side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _to_rgb(im: Image.Image) -> Image.Image:
    """Plain RGB: CMYK and palette converted, any transparency flattened on white."""
    if im.mode == "RGB":
        return im
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return im.convert("RGB")


def process(content: bytes, *, max_bytes: int) -> Processed:
    """Turn an uploaded file into a clean JPEG and its thumbnail, or refuse it with a reason.
    Decoding waits for one of the process's decode turns (`decode_slot`)."""
    if len(content) > max_bytes:
        raise PhotoTooLarge()
    with decode_slot():
        return _process(content)


def _process(content: bytes) -> Processed:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # An MPO is found by the JPEG opener (it has no opener of its own).
            im = Image.open(io.BytesIO(content), formats=["JPEG", "PNG"])
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PhotoTooManyPixels() from exc
    except UnidentifiedImageError as exc:
        raise PhotoUnsupported() from exc
    except Exception as exc:  # broken headers raise all sorts (SyntaxError, struct.error, ...)
        raise PhotoCorrupt() from exc
    kind = _OPENED_AS.get(im.format or "")
    if kind is None:
        raise PhotoUnsupported()
    width, height = im.size
    if width * height > MAX_PIXELS:  # checked on the header, before a single pixel is decoded
        raise PhotoTooManyPixels()
    if kind == "PNG" and decoded_bytes(im) > MAX_DECODED_BYTES:
        raise PhotoTooLargeDecoded()  # before getexif(), which decodes a PNG to find eXIf
    try:
        # EXIF orientation 5–8 swaps the sides: the final box is computed on the upright size.
        orientation = im.getexif().get(0x0112, 1)
        upright = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
        final = _fit(*upright, MAX_SIDE)
        if kind == "JPEG":
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale, never smaller than the final size.
            target = (final[1], final[0]) if orientation in (5, 6, 7, 8) else final
            im.draft("RGB", target)
        if decoded_bytes(im) > MAX_DECODED_BYTES:  # still nothing decoded
            raise PhotoTooLargeDecoded()
        im.load()
        im = ImageOps.exif_transpose(im)
        im = _to_rgb(im)
        if max(im.size) > MAX_SIDE or im.size != final:
            im = im.resize(final, Image.Resampling.LANCZOS, reducing_gap=3.0)
        thumb = im.copy()
        thumb.thumbnail((THUMB_SIDE, THUMB_SIDE), Image.Resampling.LANCZOS, reducing_gap=2.0)
    except (OSError, SyntaxError, ValueError) as exc:
        raise PhotoCorrupt() from exc
    # Drop everything the source carried (EXIF, GPS, ICC, comments); _encode writes none.
    im.info = {}
    thumb.info = {}
    return Processed(
        jpeg=_encode(im, JPEG_QUALITY),
        thumbnail=_encode(thumb, THUMB_QUALITY),
        width=im.width,
        height=im.height,
    )


def _encode(im: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    # No optimize=True: its second Huffman pass costs ~8 ms on 3 MP for a few % of size.
    im.save(out, "JPEG", quality=quality, exif=b"", icc_profile=None)
    return out.getvalue()


def photo_key(sha256: str, *, thumbnail: bool = False) -> str:
    """The storage key of a photo (or its thumbnail): `<first two hex digits>/<sha256>.jpg`."""
    suffix = "_thumb.jpg" if thumbnail else ".jpg"
    return f"{sha256[:2]}/{sha256}{suffix}"


def _write_once(storage: Storage, key: str, data: bytes) -> None:
    """Store `data` unless an object with this hash is already there (same hash, same bytes)."""
    if not storage.exists(key):
        storage.put(key, data)


def read_photo(storage: Storage, photo: Photo, *, thumbnail: bool = False) -> bytes:
    """The stored JPEG of `photo` (404 when its file is gone)."""
    try:
        return storage.get(photo_key(photo.sha256, thumbnail=thumbnail))
    except ObjectMissing as exc:
        raise NotFound("未找到该照片") from exc


def upload_photo(
    db: Session,
    *,
    content: bytes,
    storage: Storage,
    max_bytes: int,
    actor: Actor,
    now: datetime,
) -> Photo:
    """Store an uploaded photo for `actor`; the same photo again returns the same record."""
    processed = process(content, max_bytes=max_bytes)
    digest = hashlib.sha256(processed.jpeg).hexdigest()
    assert actor.user_id is not None
    existing = db.scalar(
        select(Photo).where(Photo.owner_id == actor.user_id, Photo.sha256 == digest)
    )
    _write_once(storage, photo_key(digest), processed.jpeg)
    _write_once(storage, photo_key(digest, thumbnail=True), processed.thumbnail)
    if existing is not None:
        return existing
    photo = Photo(
        owner_id=actor.user_id,
        sha256=digest,
        width=processed.width,
        height=processed.height,
        bytes=len(processed.jpeg),
        created_at=now,
    )
    db.add(photo)
    db.flush()
    record(
        db,
        actor=actor,
        action="photo.uploaded",
        target_type="photo",
        target_id=photo.id,
        now=now,
        detail={"bytes": photo.bytes, "width": photo.width, "height": photo.height},
    )
    return photo


def access_photo_by_id(db: Session, photo_id: int, *, actor: Actor) -> Photo:
    """The photo if `actor` may see it, else 404.

    Its owner always; staff when an application carrying it lies in their jurisdiction (the
    center and leaders everywhere, a town its own); staff and the village's helpers when a visit
    record carries it; staff of the area when a volunteer's report or a service record carries
    it. Nobody else, and never through a public URL.
    """
    photo = db.get(Photo, photo_id)
    if photo is None:
        raise NotFound("未找到该照片")
    if photo.owner_id == actor.user_id:
        return photo
    if actor.is_staff and _carried_in_jurisdiction(db, photo_id, Application, actor=actor):
        return photo
    if _carried_in_jurisdiction(db, photo_id, Visit, actor=actor):
        return photo
    if actor.is_staff and _carried_in_jurisdiction(db, photo_id, VolunteerReport, actor=actor):
        return photo
    if actor.is_staff and _service_in_jurisdiction(db, photo_id, actor=actor):
        return photo
    raise NotFound("未找到该照片")


def view_photo(db: Session, photo_id: int, *, actor: Actor, now: datetime) -> Photo:
    """The photo for `actor` (as `access_photo_by_id`); a staff member opening someone else's
    photo of documents whole is audited as `pii.viewed` (an owner viewing their own is not)."""
    photo = access_photo_by_id(db, photo_id, actor=actor)
    if photo.owner_id != actor.user_id and actor.is_staff:
        record_unmasked_view(
            db, actor=actor, target_type="photo", target_id=photo.id, fields=["photo"], now=now
        )
    return photo


#: What may carry a photo, with its link table (records with a town and a village).
_PHOTO_LINKS: dict[type, type] = {
    Application: ApplicationPhoto,
    Visit: VisitPhoto,
    VolunteerReport: VolunteerReportPhoto,
}


def _carried_in_jurisdiction(
    db: Session,
    photo_id: int,
    record: type[Application] | type[Visit] | type[VolunteerReport],
    *,
    actor: Actor,
) -> bool:
    """Whether a `record` in `actor`'s area carries the photo."""
    link = _PHOTO_LINKS[record]
    query = select(record.id).join(link).where(link.photo_id == photo_id)
    query = scope_by_area(query, actor, town_col=record.town_id, village_col=record.village_id)
    return db.scalar(query.limit(1)) is not None


def _service_in_jurisdiction(db: Session, photo_id: int, *, actor: Actor) -> bool:
    """Whether a service record of a household in `actor`'s town (staff) carries the photo."""
    query = select(ServiceRecord.id).join(ServicePhoto).where(ServicePhoto.photo_id == photo_id)
    # Services carry the household's town only; staff are scoped by town (or not at all).
    query = scope_by_area(
        query, actor, town_col=ServiceRecord.town_id, village_col=ServiceRecord.town_id
    )
    return db.scalar(query.limit(1)) is not None


def owned_photo_ids(db: Session, photo_ids: list[int], *, actor: Actor) -> set[int]:
    """Those of `photo_ids` that belong to `actor`."""
    if not photo_ids:
        return set()
    rows = db.scalars(
        select(Photo.id).where(Photo.id.in_(photo_ids), Photo.owner_id == actor.user_id)
    )
    return set(rows)


def open_full_photo(db: Session, photo_id: int, *, actor: Actor, now: datetime) -> Photo:
    """A photo at full size for staff reviewing it (papers carry personal data): the same
    access as `access_photo_by_id`, and the look is recorded as `pii.viewed`."""
    photo = access_photo_by_id(db, photo_id, actor=actor)
    if photo.owner_id != actor.user_id:
        record_unmasked_view(
            db,
            actor=actor,
            target_type="photo",
            target_id=photo.id,
            fields=["photo"],
            now=now,
            purpose="review",
        )
        db.flush()
    return photo
