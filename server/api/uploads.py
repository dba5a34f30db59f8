"""Photo uploads: residents and helpers upload; owners and staff of the area read."""

from __future__ import annotations

import io
from typing import Any

from flask import Response, send_file
from flask_smorest import Blueprint
from marshmallow import Schema, fields
from werkzeug.datastructures import FileStorage

from server.api.deps import current_actor, db, now, requires, runtime
from server.models import Photo, Role
from server.services.applications import photos

blp = Blueprint("uploads", __name__, url_prefix="/api/v1", description="Photo uploads")


class PhotoUploadSchema(Schema):
    file = fields.Raw(required=True, metadata={"type": "string", "format": "binary"})


class PhotoSchema(Schema):
    id = fields.Integer(required=True)
    width = fields.Integer(required=True)
    height = fields.Integer(required=True)
    bytes = fields.Integer(required=True)
    created_at = fields.DateTime(required=True)


@blp.route("/uploads", methods=["POST"])
@requires(Role.RESIDENT, Role.HELPER, Role.VOLUNTEER, Role.TOWN_STAFF, Role.CENTER_STAFF)
@blp.arguments(PhotoUploadSchema, location="files")
@blp.response(201, PhotoSchema)
def upload_photo(files: dict[str, Any]) -> Any:
    """Upload one JPG or PNG photo (≤ 10 MB). Metadata (GPS, camera) is removed; stored as JPEG.
    Town and center staff upload the papers of an application they file at the window."""
    return store_upload(files["file"])


def store_upload(file: FileStorage) -> Photo:
    """Process and store an uploaded photo as the caller's (reads at most the size limit + 1)."""
    config = runtime().config
    return photos.upload_photo(
        db(),
        content=file.read(config.max_upload_bytes + 1),
        storage=runtime().storage,
        max_bytes=config.max_upload_bytes,
        actor=current_actor(),
        now=now(),
    )


@blp.route("/uploads/<int:photo_id>")
@requires()
@blp.response(200, {"type": "string", "format": "binary"}, content_type="image/jpeg")
def get_photo(photo_id: int) -> Response:
    """The stored photo: its owner, staff whose area holds an application carrying it, or
    staff and helpers whose area holds a visit record carrying it. A staff member's view of
    someone else's photo is audited (`pii.viewed`)."""
    photo = photos.view_photo(db(), photo_id, actor=current_actor(), now=now())
    return send_photo(photo, thumbnail=False)


@blp.route("/uploads/<int:photo_id>/thumbnail")
@requires()
@blp.response(200, {"type": "string", "format": "binary"}, content_type="image/jpeg")
def get_thumbnail(photo_id: int) -> Response:
    """A thumbnail (longest side ≤ 320 px) of the photo; same access as the photo."""
    photo = photos.access_photo_by_id(db(), photo_id, actor=current_actor())
    return send_photo(photo, thumbnail=True)


def send_photo(photo: Photo, *, thumbnail: bool) -> Response:
    """A stored photo, never cached by anyone but the caller."""
    data = photos.read_photo(runtime().storage, photo, thumbnail=thumbnail)
    etag = f"{photo.sha256}-t" if thumbnail else photo.sha256
    response = send_file(io.BytesIO(data), mimetype="image/jpeg", max_age=0, etag=etag)
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
