"""Administration (系统管理员): the holiday calendar (load next year's State Council schedule
from a file or by entering its dates, with a preview first) and the outbox's state. Through
the services the API's `/api/v1/calendar` routes call."""

from __future__ import annotations

import csv
import io
from typing import Any

from flask import flash, redirect, render_template, request, url_for

from server.console.deps import actor, db, now, runtime
from server.console.security import page
from server.console.views import blp
from server.errors import ValidationFailed
from server.models import Role
from server.services.accounts import security
from server.services.calendar import holidays
from server.services.notifications import messages

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
