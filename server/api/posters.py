"""Service-point posters: a printable A4 PNG per village with the apply page's QR code."""

from __future__ import annotations

from flask import Response, send_file
from flask_smorest import Blueprint

from server.api.deps import current_actor, db, requires, runtime
from server.services import posters

blp = Blueprint("posters", __name__, url_prefix="/api/v1", description="Service-point posters")


@blp.route("/villages/<string:code>/poster.png")
@requires(*posters.POSTER_ROLES)
@blp.response(200, {"type": "string", "format": "binary"}, content_type="image/png")
def village_poster(code: str) -> Response:
    """The village's A4 poster (300 dpi PNG): 博山e救助, the village and town, the district
    hotline, three steps to apply and a QR code of the apply page carrying the village code.

    For the staff of the village's town, the center, and the village's own helpers; other
    villages are not found."""
    config = runtime().config
    poster = posters.village_poster(
        db(),
        code,
        actor=current_actor(),
        hotline=config.district_hotline,
        page=config.miniprogram_apply_page,
        upload_dir=config.upload_dir,
    )
    response = send_file(
        poster.path.resolve(),
        mimetype="image/png",
        download_name=f"poster-{poster.content.village_code}.png",
        etag=poster.digest,
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
