"""Liveness and readiness probes."""

from __future__ import annotations

from flask_smorest import Blueprint
from marshmallow import Schema, fields
from sqlalchemy import text

from server.api.deps import db, public
from server.errors import UpstreamUnavailable

blp = Blueprint("system", __name__, description="Health checks (no login)")


class HealthSchema(Schema):
    status = fields.String(required=True)


@blp.route("/healthz")
@blp.response(200, HealthSchema)
@public
def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@blp.route("/readyz")
@blp.response(200, HealthSchema)
@public
def readyz() -> dict[str, str]:
    """The database answers."""
    try:
        db().execute(text("SELECT 1"))
    except Exception as exc:
        raise UpstreamUnavailable("数据库暂时不可用", code="database_unavailable") from exc
    return {"status": "ready"}
