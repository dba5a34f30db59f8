"""HTTP layer: blueprints and marshmallow schemas. Only `create_app` imports this package."""

from __future__ import annotations

from pathlib import Path

from flask import Flask, send_from_directory
from flask_smorest import Api

from server.api import guards, links
from server.api.errors import ErrorSchema, register_error_handlers
from server.api.messages import use_chinese_messages
from server.fields import Money


class EResApi(Api):
    """flask-smorest's Api with our error shape documented and our own handlers."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:  # our handlers are registered by create_app
        pass


def _blueprints() -> list:  # noqa: ANN202
    from server.api import (
        applications,
        areas,
        audit,
        auth,
        calendar,
        data_rights,
        dispatches,
        donations,
        feeds,
        helpers,
        households,
        informing,
        launch,
        leads,
        notifications,
        posters,
        public,
        reports,
        security,
        social,
        social_services,
        staff,
        system,
        uploads,
        visits,
    )

    return [
        system.blp,
        auth.blp,
        areas.blp,
        staff.blp,
        security.blp,
        uploads.blp,
        applications.blp,
        helpers.blp,
        notifications.blp,
        notifications.callback_blp,
        posters.blp,
        launch.blp,
        feeds.blp,
        leads.blp,
        visits.blp,
        households.blp,
        social.blp,
        donations.blp,
        social_services.blp,
        public.blp,
        calendar.blp,
        audit.blp,
        dispatches.blp,
        informing.blp,
        reports.blp,
        data_rights.blp,
    ]


def register_api(app: Flask) -> Api:
    import swagger_ui_bundle

    use_chinese_messages()
    guards.install(app)
    app.config.update(
        API_TITLE="博山e救助 API (Boshan e-Rescue)",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="/docs",
        # Assets come from the installed swagger-ui-bundle package: the page works offline.
        OPENAPI_SWAGGER_UI_URL="/api/docs/assets/",
    )
    api = EResApi(app, spec_kwargs={"servers": [{"url": "/"}]})
    api.register_field(Money, "string", "decimal")
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "description": "opaque token"}
    )
    for blp in _blueprints():
        api.register_blueprint(blp)
    links.add_links(api.spec._paths)
    assets = Path(swagger_ui_bundle.swagger_ui_path)
    app.add_url_rule(
        "/api/docs/assets/<path:filename>",
        "swagger_assets",
        lambda filename: send_from_directory(assets, filename),
    )
    register_error_handlers(app)
    return api
