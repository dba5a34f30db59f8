"""服务点海报: each village's A4 poster (the apply page's code, the hotline, three steps) to
preview and print — through the service the API's `/api/v1/villages/<code>/poster.png` calls.
For the staff of the village's town and the center; other villages are not found."""

from __future__ import annotations

from typing import Any

from flask import Response, render_template, request, send_file

from server.console.deps import actor, db, runtime
from server.console.security import page
from server.console.views import blp
from server.models import Role
from server.services.accounts import helpers
from server.services.places import launch, posters

WORKERS = (Role.TOWN_STAFF, Role.CENTER_STAFF)


def _kind() -> launch.CodeKind:
    """The 小程序码 unless the plain link's QR code is asked for (as the API)."""
    wanted = request.args.get("kind", launch.CodeKind.WXACODE.value)
    kinds = {k.value: k for k in launch.CodeKind}
    return kinds.get(wanted, launch.CodeKind.WXACODE)


@blp.route("/posters", endpoint="posters")
@page(*WORKERS)
def posters_page() -> Any:
    return render_template(
        "console/posters.html", villages=helpers.villages_in_scope(db(), actor=actor())
    )


def _poster(code: str) -> posters.Poster:
    config = runtime().config
    return posters.village_poster(
        db(),
        code,
        actor=actor(),
        hotline=config.district_hotline,
        page=config.miniprogram_apply_page,
        upload_dir=config.upload_dir,
        link_base=config.miniprogram_link_base,
        code_kind=_kind(),
        gateway=runtime().gateway,
        miniprogram_state=config.wechat_miniprogram_state,
    )


@blp.route("/posters/<string:code>/print", endpoint="poster")
@page(*WORKERS)
def poster_page(code: str) -> Any:
    """One village's poster on an A4 page to print."""
    poster = _poster(code)
    return render_template("console/poster.html", content=poster.content, kind=_kind().value)


@blp.route("/posters/<string:code>.png", endpoint="poster_png")
@page(*WORKERS)
def poster_png(code: str) -> Response:
    poster = _poster(code)
    response = send_file(
        poster.path.resolve(),
        mimetype="image/png",
        download_name=f"poster-{poster.content.village_code}.png",
        etag=poster.digest,
        max_age=0,
    )
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["X-Code-Kind"] = poster.content.code_kind
    return response
