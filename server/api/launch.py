"""What a 小程序码's scene stands for: the mini-program asks this when opened with `scene`."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields

from server.api.deps import db, public
from server.services.places import launch

blp = Blueprint("launch", __name__, url_prefix="/api/v1", description="Mini-program codes")


class LaunchTargetSchema(Schema):
    page = fields.String(required=True, metadata={"description": "mini-program page path"})
    params = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        metadata={"description": "the page's query parameters"},
    )


@blp.route("/launch/<string:scene>")
@public
@blp.response(200, LaunchTargetSchema)
def resolve(scene: str) -> Any:
    """The page and parameters of a 小程序码's scene (`v=<village>`, `i=<invitation code>`), for
    the mini-program opened by scanning it; anything else is 404 `scene_unknown`. No login: the
    answer holds only what the printed code itself carries."""
    target = launch.resolve_scene(db(), scene)
    return {"page": target.page, "params": target.params}
