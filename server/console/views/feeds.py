"""部门报送: the feeds with their cadence, last batch, next due date and punctuality (the
center's board of every feed); a department's upload with a live progress bar while the worker
imports; a batch's result and rejected rows with errors.xlsx; each feed's settings with their
history (changed by the system administrator). All through the services the API's
`/api/v1/feeds` routes call."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for

from server.console.deps import actor, db, now, runtime
from server.console.security import page
from server.console.views import blp
from server.errors import ValidationFailed
from server.models import Role
from server.services.feeds import batches, settings

READERS = (Role.CENTER_STAFF, Role.LEADER, Role.DEPARTMENT_STAFF)
SENDERS = (Role.DEPARTMENT_STAFF, Role.CENTER_STAFF)
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CADENCE_LABELS = {
    "event": "随时报送",
    "weekly": "每周",
    "monthly": "每月",
    "yearly": "每年",
}
#: The result's counters as the department reads them, in order.
RESULT_LABELS = (
    ("read", "读取"),
    ("accepted", "通过校验"),
    ("rejected", "未通过校验"),
    ("below_threshold", "低于门槛"),
    ("leads_created", "新建线索"),
    ("leads_updated", "补充已有线索"),
    ("already_covered", "已在救助中"),
    ("duplicates", "文件内重复"),
)
STATUS_LABELS = {
    "queued": "排队等待导入",
    "running": "正在导入",
    "done": "导入完成",
    "failed": "导入失败",
}


@blp.route("/feeds")
@page(*READERS)
def feeds() -> Any:
    """Every feed with its last batch, next due date and punctuality (department: its own);
    the late ones first, the latest by the most working days."""
    items = batches.list_feeds(db(), actor=actor(), today=now().date())
    order = {"late": 0, "never_sent": 1, "due_soon": 2, "on_time": 3}
    items.sort(key=lambda f: (order.get(f["state"], 9), -(f["late_by_working_days"] or 0)))
    late = sum(1 for f in items if f["state"] in ("late", "never_sent"))
    return render_template("console/feeds.html", items=items, cadence=CADENCE_LABELS, late=late)


@blp.route("/feeds/<code>")
@page(*READERS)
def feed(code: str) -> Any:
    """One feed: upload a file, its earlier batches, its settings."""
    found = settings.access_feed(db(), code, actor=actor())
    state = next(
        f for f in batches.list_feeds(db(), actor=actor(), today=now().date()) if f["code"] == code
    )
    rows = batches.list_batches(db(), code, actor=actor())
    pii = runtime().pii
    return render_template(
        "console/feed.html",
        feed=found,
        state=state,
        cadence=CADENCE_LABELS,
        batches=[batches.batch_view(db(), b, pii=pii) for b in rows],
        statuses=STATUS_LABELS,
        can_upload=actor().role in SENDERS,
        max_mb=runtime().config.max_upload_bytes // (1024 * 1024),
    )


@blp.route("/feeds/<code>/batches", methods=["POST"])
@page(*SENDERS)
def upload_batch(code: str) -> Any:
    """The department's file: small ones are imported at once, larger ones by the worker while
    the batch page shows the progress."""
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationFailed("请选择要上传的文件", errors={"file": ["请选择文件"]})
    limit = runtime().config.max_upload_bytes
    content = upload.read(limit + 1)
    if len(content) > limit:
        raise ValidationFailed("文件过大，请拆分后上传", code="file_too_large")
    submitted = batches.submit_batch(
        db(),
        code,
        content=content,
        filename=upload.filename,
        pii=runtime().pii,
        actor=actor(),
        now=now(),
        storage=runtime().storage,
    )
    if submitted.queued:
        flash("文件已接收，正在后台导入，可留在本页查看进度", "info")
    else:
        flash("文件已导入", "success")
    return redirect(url_for("console.batch", code=code, batch_id=submitted.batch.id), 303)


def _batch_context(code: str, batch_id: int) -> dict[str, Any]:
    found = batches.access_batch(db(), code, batch_id, actor=actor())
    view = batches.batch_view(db(), found, pii=runtime().pii)
    return {
        "feed": settings.feed_by_code(code),
        "batch": view,
        "results": RESULT_LABELS,
        "statuses": STATUS_LABELS,
        "working": view["status"] in ("queued", "running"),
        "percent": int(view["progress"] * 100),
        "can_download": actor().role in SENDERS,
    }


@blp.route("/feeds/<code>/batches/<int:batch_id>")
@page(*READERS)
def batch(code: str, batch_id: int) -> Any:
    return render_template("console/batch.html", **_batch_context(code, batch_id))


@blp.route("/feeds/<code>/batches/<int:batch_id>/progress")
@page(*READERS)
def batch_progress(code: str, batch_id: int) -> Any:
    """The progress fragment htmx polls every second while the worker imports; once done it
    answers the result and stops polling."""
    response = Response(
        render_template("console/_batch_progress.html", **_batch_context(code, batch_id))
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@blp.route("/feeds/<code>/batches/<int:batch_id>/errors.xlsx")
@page(*SENDERS)
def batch_errors(code: str, batch_id: int) -> Response:
    """The rejected rows as sent, with 原行号 and 错误说明, to fix and send again (an unmasked
    export, audited by the service as the API's)."""
    found = batches.access_batch(db(), code, batch_id, actor=actor())
    content = batches.errors_workbook(db(), found, pii=runtime().pii, actor=actor(), now=now())
    response = Response(content, mimetype=_XLSX)
    response.headers["Content-Disposition"] = f"attachment; filename=batch-{found.id}-errors.xlsx"
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- settings (the system administrator changes them; the center reads them) ----------------


@blp.route("/feeds/<code>/settings")
@page(*READERS, Role.SYSTEM_ADMIN)
def feed_settings(code: str) -> Any:
    settings.access_feed(db(), code, actor=actor())
    return render_template(
        "console/feed_settings.html",
        view=settings.settings_view(db(), code),
        history=settings.settings_history(db(), code, actor=actor()),
        can_edit=actor().role is Role.SYSTEM_ADMIN,
    )


@blp.route("/feeds/<code>/settings", methods=["POST"])
@page(Role.SYSTEM_ADMIN)
def feed_settings_save(code: str) -> Any:
    """Extra column aliases (one field per column, separated by 、 or commas) and the
    threshold (empty: the registry's default)."""
    view = settings.settings_view(db(), code)
    aliases = {
        c["field"]: _split(request.form.get(f"aliases-{c['field']}", "")) for c in view["columns"]
    }
    threshold, reset = None, False
    if view["threshold_field"] is not None:
        text = request.form.get("threshold", "").strip()
        if text:
            try:
                threshold = Decimal(text)
            except InvalidOperation as exc:
                raise ValidationFailed(
                    "门槛金额应为数字", errors={"threshold": ["应为数字"]}
                ) from exc
            if not Decimal(0) <= threshold <= Decimal(100_000_000):
                raise ValidationFailed("门槛金额超出范围", errors={"threshold": ["超出范围"]})
        else:
            reset = True
    settings.update_settings(
        db(),
        code,
        column_aliases={k: v for k, v in aliases.items() if v},
        threshold=threshold,
        reset_threshold=reset,
        actor=actor(),
        now=now(),
    )
    flash("设置已保存", "success")
    return redirect(url_for("console.feed_settings", code=code), 303)


def _split(text: str) -> list[str]:
    parts = text.replace("，", ",").replace("、", ",").replace("\n", ",").split(",")
    return [p.strip()[:40] for p in parts if p.strip()]
