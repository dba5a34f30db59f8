"""审计: the audit trail for the audit administrator (三员分立), through the API's own service
(`audit.list_entries`), so each page read is itself audited (`audit.read`) exactly as the API's.

Only the audit administrator: the separation of duties on main gives the trail to no one else
(the center keeps its casework, not the log of who did what)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from flask import Response, render_template, request

from server.console import forms
from server.console.deps import actor, db, now
from server.console.format import ROLE_LABELS
from server.console.security import page
from server.console.views import blp
from server.models import Role
from server.services.kernel import audit as trail

PER_PAGE = 50
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: The quick filters above the table.
QUICK = (
    ("pii.viewed", "查看完整个人信息"),
    ("pii.exported", "导出个人信息"),
    ("login.", "登录"),
    ("lead.", "线索"),
    ("audit.", "审计查阅"),
)


@blp.route("/audit")
@page(Role.AUDIT_ADMIN)
def audit() -> Any:
    args = forms.parse(forms.AuditArgs(), request.args)
    found = trail.list_entries(
        db(),
        forms.audit_filter(args),
        actor=actor(),
        limit=PER_PAGE,
        before=args.get("before"),
        now=now(),
    )
    filter_args = {k: v for k, v in request.args.items() if k != "before" and v}
    context = {
        "items": found["items"],
        "next_before": found["next_before"],
        "args": args,
        "filter_args": filter_args,
        "labels": trail.ACTION_LABELS,
        "roles": ROLE_LABELS,
        "quick": QUICK,
    }
    if request.headers.get("HX-Target") == "audit-results":
        return render_template("console/_audit_results.html", **context)
    return render_template("console/audit.html", **context)


@blp.route("/audit.xlsx")
@page(Role.AUDIT_ADMIN)
def audit_export() -> Response:
    """The filtered trail as a workbook; the export is audited (`audit.exported`)."""
    args = forms.parse(forms.AuditArgs(), request.args)
    content = trail.export_entries(db(), forms.audit_filter(args), actor=actor(), now=now())
    response = Response(content, mimetype=_XLSX)
    stamp = now().strftime("%Y%m%d-%H%M")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="audit-{stamp}.xlsx"; '
        f"filename*=UTF-8''{quote(f'审计记录-{stamp}.xlsx')}"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response
