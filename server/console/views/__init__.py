"""The console's one blueprint (`/console`), its pages split by room."""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint

from server.console import errors
from server.console.deps import connection, now
from server.console.security import CSRF_FIELD, check_csrf, csrf_token
from server.services.calendar import holidays

_ROOT = Path(__file__).resolve().parent.parent

blp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder=str(_ROOT / "templates"),
    static_folder=str(_ROOT / "static"),
    static_url_path="/static",
)


errors.register(blp)


@blp.before_request
def _csrf() -> None:
    check_csrf()


@blp.app_context_processor
def _globals() -> dict[str, object]:
    return {"csrf_token": csrf_token, "csrf_field": CSRF_FIELD, "calendar_notice": _calendar_notice}


def _calendar_notice() -> dict[str, object] | None:
    """While next year's holidays are unknown, every page says so (one small query)."""
    return holidays.next_year_notice(connection(), today=now().date())


from server.console.views import (  # noqa: E402,F401  (routes register on import)
    admin,
    applications,
    audit,
    auth,
    dashboard,
    dispatches,
    duplicates,
    feeds,
    field,
    helpers,
    home,
    households,
    informing,
    leads,
    posters,
    public_info,
    reports,
    supervision,
    triage,
)
