"""首页: what waits for me today."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import Any

from flask import redirect, render_template, send_file, url_for

from server.console.deps import actor, db, now
from server.console.security import CONSOLE_ROLES, page
from server.console.views import blp
from server.models import Role
from server.services.dispatches import worklist
from server.services.places.posters import FONT_RESOURCE

#: Where each administrator's console starts (they have no worklist: no casework).
ADMIN_HOME = {
    Role.AUDIT_ADMIN: "console.audit",
    Role.SYSTEM_ADMIN: "console.admin_holidays",
    Role.SECURITY_ADMIN: "console.admin_locks",
}


@blp.route("/")
@page(*CONSOLE_ROLES)
def home() -> Any:
    """Each count clicks through to its filtered list; an administrator goes to their room."""
    if actor().role in ADMIN_HOME:
        return redirect(url_for(ADMIN_HOME[actor().role]))
    work = worklist.worklist(db(), actor=actor(), now=now())
    return render_template("console/home.html", work=work)


@blp.route("/fonts/noto-sans-sc.ttf")
def cjk_font() -> Any:
    """Noto Sans SC (SIL OFL 1.1) from the `justmytype-intl-cjk` package the posters use: the
    stylesheet's last resort for a machine with no Chinese font of its own (office PCs have
    Microsoft YaHei and never fetch it). Public and cacheable, like any static file."""
    package, resource = FONT_RESOURCE
    path = Path(str(files(package).joinpath(resource)))
    return send_file(path, mimetype="font/ttf", max_age=7 * 24 * 3600)
