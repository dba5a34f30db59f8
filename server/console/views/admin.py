"""Administration (三员分立): for the system administrator the staff accounts (create, role and
jurisdiction, reset password), the holiday calendar (load next year's State Council schedule
from a file or by entering its dates, with a preview first) and the outbox's state; for the
security administrator account locks (lock by hand, unlock). Through
the services the API's `/api/v1/calendar` routes call."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from server.console import forms
from server.console.deps import actor, connection, db, now, runtime
from server.console.security import page
from server.console.views import blp
from server.errors import ValidationFailed
from server.models import Role
from server.services.accounts import security, staff
from server.services.accounts.passwords import PasswordPolicy
from server.services.calendar import holidays
from server.services.notifications import messages
from server.services.places import areas

#: Entered dates: at most this many lines (a year's schedule is about 40).
MAX_LINES = 400


@blp.route("/admin/holidays")
@page(Role.SYSTEM_ADMIN)
def admin_holidays() -> Any:
    return render_template(
        "console/admin_holidays.html",
        coverage=holidays.coverage(db(), today=now().date()),
        next_year=now().year + 1,
    )


@blp.route("/admin/holidays/preview", methods=["POST"])
@page(Role.SYSTEM_ADMIN)
def admin_holidays_preview() -> Any:
    """The schedule as it would be loaded (nothing is written): from the uploaded file, or from
    the dates typed one per line (日期 类型 名称)."""
    content, filename = _submitted_table()
    preview = holidays.preview_rows(content, filename)
    table = _as_csv(preview["days"])
    return render_template(
        "console/admin_holidays_preview.html",
        preview=preview,
        table=table,
        source=request.form.get("source", "").strip()[:200],
    ), (422 if preview["errors"] else 200)


@blp.route("/admin/holidays", methods=["POST"])
@page(Role.SYSTEM_ADMIN)
def admin_holidays_load() -> Any:
    """Load the previewed schedule: each year in it replaces that year (all or nothing)."""
    table = request.form.get("table", "")
    if not table.strip():
        raise ValidationFailed("没有可载入的节假日安排", errors={"table": ["为空"]})
    result = holidays.load_holidays(
        db(),
        content=table.encode("utf-8"),
        filename="holidays.csv",
        source=request.form.get("source") or "国务院办公厅节假日安排",
        actor=actor(),
        now=now(),
    )
    years = "、".join(
        f"{y.year}年（放假{y.holidays}天，调休上班{y.workdays}天）" for y in result.years
    )
    flash(f"已载入 {years}", "success")
    return redirect(url_for("console.admin_holidays"), 303)


def _submitted_table() -> tuple[bytes, str]:
    upload = request.files.get("file")
    if upload is not None and upload.filename:
        limit = runtime().config.max_upload_bytes
        content = upload.read(limit + 1)
        if len(content) > limit:
            raise ValidationFailed("文件过大", code="file_too_large")
        return content, upload.filename
    lines = [line.strip() for line in request.form.get("dates", "").splitlines() if line.strip()]
    if not lines:
        raise ValidationFailed("请上传节假日表，或逐行填写日期", errors={"dates": ["请填写日期"]})
    if len(lines) > MAX_LINES:
        raise ValidationFailed(f"最多填写 {MAX_LINES} 行", errors={"dates": ["行数过多"]})
    rows = [["日期", "类型", "名称"]]
    for line in lines:
        parts = line.replace("，", ",").replace(",", " ").replace("\t", " ").split()
        rows.append((parts + ["", "", ""])[:2] + [" ".join(parts[2:])])
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    return buffer.getvalue().encode("utf-8"), "entered.csv"


def _as_csv(days: list[holidays.ParsedDay]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["日期", "类型", "名称"])
    for d in days:
        writer.writerow([d.day.isoformat(), "workday" if d.is_workday else "holiday", d.name])
    return buffer.getvalue()


@blp.route("/admin/outbox")
@page(Role.SYSTEM_ADMIN)
def admin_outbox() -> Any:
    """WeChat messages waiting, sent, skipped (no subscription) and failed; the oldest waiting."""
    return render_template(
        "console/admin_outbox.html", status=messages.outbox_status(db(), actor=actor(), now=now())
    )


@blp.route("/admin/locks")
@page(Role.SECURITY_ADMIN)
def admin_locks() -> Any:
    """Accounts locked now by failed logins (安全管理员 unlocks them)."""
    return render_template(
        "console/admin_locks.html",
        accounts=security.locked_accounts(db(), actor=actor(), now=now()),
    )


@blp.route("/admin/locks/<int:user_id>/unlock", methods=["POST"])
@page(Role.SECURITY_ADMIN)
def admin_unlock(user_id: int) -> Any:
    user = security.unlock_account(db(), user_id=user_id, actor=actor(), now=now())
    flash(f"已解除 {user.username} 的锁定", "success")
    return redirect(url_for("console.admin_locks"), 303)


@blp.route("/admin/locks/lock", methods=["POST"])
@page(Role.SECURITY_ADMIN)
def admin_lock() -> Any:
    """Lock an account by hand (its sessions end; 安全管理员 unlocks it here)."""
    body = forms.parse(forms.LockForm(), request.form)
    user = security.lock_account(
        db(),
        username=body["username"],
        days=body["days"],
        reason=body.get("reason") or "",
        actor=actor(),
        now=now(),
    )
    flash(f"已锁定 {user.username}（{body['days']} 天）", "success")
    return redirect(url_for("console.admin_locks"), 303)


@blp.route("/admin/staff")
@page(Role.SYSTEM_ADMIN)
def admin_staff() -> Any:
    """Every staff account with its role and jurisdiction; create one (系统管理员)."""
    towns = areas.list_towns(connection())
    departments = areas.list_departments(connection())
    return render_template(
        "console/admin_staff.html",
        accounts=staff.list_staff(db(), actor=actor()),
        towns=towns,
        departments=departments,
        town_names={t.id: t.name for t in towns},
        department_names={d.id: d.name for d in departments},
        town_codes={t.id: t.code for t in towns},
        department_codes={d.id: d.code for d in departments},
        roles=[r.value for r in staff.ACCOUNT_ROLES],
        me=actor().user_id,
    )


@blp.route("/admin/staff", methods=["POST"])
@page(Role.SYSTEM_ADMIN)
def admin_staff_create() -> Any:
    """A new account with a temporary password, shown once and changed at the first login."""
    body = forms.parse(forms.StaffCreateForm(), request.form)
    policy = PasswordPolicy.from_config(runtime().config)
    password = staff.temporary_password(policy)
    user = staff.create_staff(
        db(),
        username=body["username"],
        password=password,
        role=Role(body["role"]),
        town_code=body.get("town"),
        department_code=body.get("department"),
        display_name=body.get("display_name"),
        now=now(),
        actor=actor(),
        policy=policy,
    )
    return render_template(
        "console/admin_staff_password.html", user=user, password=password, created=True
    ), 201


@blp.route("/admin/staff/<int:user_id>", methods=["POST"])
@page(Role.SYSTEM_ADMIN)
def admin_staff_change(user_id: int) -> Any:
    body = forms.parse(forms.StaffChangeForm(), request.form)
    user = staff.change_staff(
        db(),
        user_id,
        role=Role(body["role"]),
        town_code=body.get("town"),
        department_code=body.get("department"),
        actor=actor(),
        now=now(),
    )
    flash(f"已更新 {user.username} 的角色和管辖范围", "success")
    return redirect(url_for("console.admin_staff"), 303)


@blp.route("/admin/staff/<int:user_id>/password", methods=["POST"])
@page(Role.SYSTEM_ADMIN)
def admin_staff_reset(user_id: int) -> Any:
    reset = staff.reset_password(
        db(), user_id, actor=actor(), now=now(), policy=PasswordPolicy.from_config(runtime().config)
    )
    return render_template(
        "console/admin_staff_password.html",
        user=reset.user,
        password=reset.temporary_password,
        created=False,
    )


@blp.route("/admin/villages")
@page(Role.SYSTEM_ADMIN)
def admin_villages() -> Any:
    """Every town with its villages; load a villages file (previewed first)."""
    return render_template(
        "console/admin_villages.html", towns=areas.list_towns_with_villages(db())
    )


@blp.route("/admin/villages/preview", methods=["POST"])
@page(Role.SYSTEM_ADMIN)
def admin_villages_preview() -> Any:
    """What the uploaded file would add, rename and move (nothing is written)."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationFailed("请选择村（社区）名单文件", errors={"file": ["请选择文件"]})
    limit = runtime().config.max_upload_bytes
    content = upload.read(limit + 1)
    if len(content) > limit:
        raise ValidationFailed("文件过大", code="file_too_large")
    preview = areas.preview_villages(db(), content=content, filename=upload.filename)
    return render_template("console/admin_villages_preview.html", preview=preview), (
        422 if preview.errors else 200
    )


@blp.route("/admin/villages", methods=["POST"])
@page(Role.SYSTEM_ADMIN)
def admin_villages_load() -> Any:
    table = request.form.get("table", "")
    if not table.strip():
        raise ValidationFailed("没有可载入的村（社区）", errors={"table": ["为空"]})
    result = areas.import_villages(
        db(), content=table.encode("utf-8"), filename="villages.csv", actor=actor(), now=now()
    )
    flash(f"已载入：新增 {result.created} 个，更新 {result.updated} 个", "success")
    return redirect(url_for("console.admin_villages"), 303)
