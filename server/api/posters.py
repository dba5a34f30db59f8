"""Service-point posters: a printable A4 PNG per village with the apply page's QR code."""

from __future__ import annotations

from typing import Any

from flask import Response, send_file
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.deps import current_actor, db, requires, runtime
from server.services.places import launch, posters

blp = Blueprint("posters", __name__, url_prefix="/api/v1", description="Service-point posters")


class CodeKindArgsSchema(Schema):
    kind = fields.String(
        load_default=launch.CodeKind.WXACODE.value,
        validate=validate.OneOf([k.value for k in launch.CodeKind]),
        metadata={
            "description": "wxacode: WeChat's 小程序码 (a plain link QR code when WeChat does not "
            "answer); link: always the plain QR code of the HTTPS link"
        },
    )


@blp.route("/villages/<string:code>/poster.png")
@requires(*posters.POSTER_ROLES)
@blp.arguments(CodeKindArgsSchema, location="query")
@blp.response(200, {"type": "string", "format": "binary"}, content_type="image/png")
def village_poster(args: dict[str, Any], code: str) -> Response:
    """The village's A4 poster (300 dpi PNG): 博山e救助, the village and town, the district
    hotline, three steps to apply and a code that opens the apply page with the village code.

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
        link_base=config.miniprogram_link_base,
        code_kind=launch.CodeKind(args["kind"]),
        gateway=runtime().gateway,
        miniprogram_state=config.wechat_miniprogram_state,
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
    response.headers["X-Code-Kind"] = poster.content.code_kind
    return response
