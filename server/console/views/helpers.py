"""协理员: invitations for a village (the one-time code and its QR code, shown once and
printable), the helpers of my villages with their filings and visits, and revoking — through
the services the API's `/api/v1/helpers` routes call."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from server.console.deps import actor, db, now, runtime
from server.console.security import page
from server.console.views import blp
from server.errors import ValidationFailed
from server.models import Role
from server.services.accounts import helpers
from server.services.kernel.qr import qr_data_uri
from server.services.places import launch

READERS = (Role.TOWN_STAFF, Role.CENTER_STAFF, Role.LEADER)
WORKERS = (Role.TOWN_STAFF, Role.CENTER_STAFF)


@blp.route("/helpers", endpoint="helpers")
@page(*READERS)
def helpers_page() -> Any:
    village = request.args.get("village", "").strip()[:32] or None
    rows = helpers.list_helpers(db(), actor=actor(), village_code=village)
    counts = helpers.activity(db(), [user.id for user, _ in rows])
    can_invite = actor().role in WORKERS
    return render_template(
        "console/helpers.html",
        rows=[(user, v, counts[user.id]) for user, v in rows],
        villages=helpers.villages_in_scope(db(), actor=actor()),
        village=village,
        invitations=(
            helpers.list_invitations(db(), actor=actor(), now=now()) if can_invite else []
        ),
        can_invite=can_invite,
    )


@blp.route("/helpers/invitations", methods=["POST"])
@page(*WORKERS)
def helper_invite() -> Any:
    """A new invitation: its code and QR code are on this page only (never stored in clear)."""
    code = request.form.get("village", "").strip()[:32]
    if not code:
        raise ValidationFailed("请选择村（社区）", errors={"village": ["请选择"]})
    new = helpers.create_invitation(db(), village_code=code, actor=actor(), now=now())
    link = launch.link(
        launch.invitation_target(new.code), base=runtime().config.miniprogram_link_base
    )
    village = next(v for v in helpers.villages_in_scope(db(), actor=actor()) if v.code == code)
    return render_template(
        "console/helper_invitation.html",
        invitation=new.invitation,
        code=new.code,
        link=link,
        qr=qr_data_uri(link),
        village=village,
    ), 201


@blp.route("/helpers/invitations/<int:invitation_id>/revoke", methods=["POST"])
@page(*WORKERS)
def helper_invitation_revoke(invitation_id: int) -> Any:
    helpers.revoke_invitation(db(), invitation_id, actor=actor(), now=now())
    flash("已撤销该邀请", "success")
    return redirect(url_for("console.helpers"), 303)


@blp.route("/helpers/<int:user_id>/revoke", methods=["POST"])
@page(*WORKERS)
def helper_revoke(user_id: int) -> Any:
    user = helpers.revoke_helper(db(), user_id, actor=actor(), now=now())
    flash(f"已解除 {user.display_name or '该用户'} 的协理员身份", "success")
    return redirect(url_for("console.helpers"), 303)
