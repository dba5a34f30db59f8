"""The staff console: server-rendered pages in the same app, beside the JSON API.

Requests flow one way, as the API's do: `server/console` (views, forms, templates) →
`server/services` → `server/models`. The console never calls the API and never queries models;
it imports only the models' enums. Every action is an HTML form POST that works without
JavaScript; htmx (vendored under static/) turns filters, paging and inline actions into partial
updates. See README "Staff console".
"""

from __future__ import annotations

from flask import Flask

from server.config import Config


def register_console(app: Flask, config: Config) -> None:
    from server.console import format, security
    from server.console.views import blp

    app.config.update(
        SESSION_COOKIE_NAME="boshan_console",
        SESSION_COOKIE_PATH="/console",
        SESSION_COOKIE_HTTPONLY=True,
        # Lax, not Strict: a link to the console from a mail or a chat opens logged in; every
        # change is a POST carrying the CSRF token, which Lax cookies never accompany cross-site.
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=config.is_production,
    )
    app.session_interface = security.ConsoleSessionInterface()
    format.register_filters(app)
    app.register_blueprint(blp)
