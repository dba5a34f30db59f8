"""走访摸排: visits by village and date, households due for a visit, and the classified ledgers
(分类台帐) with their filters and xlsx export — through the services the API's `/api/v1/visits`
and `/api/v1/ledgers` routes call. ID numbers and phones come masked from the services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from flask import Response, render_template, request

from server.clock import TZ
from server.console import forms
from server.console.deps import actor, connection, db, now, runtime
from server.console.security import page
from server.console.views import blp
from server.models import Role
from server.services.accounts import helpers
from server.services.field import ledgers, visits
from server.services.field.visit_form import HARDSHIP_LABELS
from server.services.leads.core import CATEGORIES
from server.services.places import areas

WORKERS = (Role.TOWN_STAFF, Role.CENTER_STAFF)
PER_PAGE = 30
_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _today() -> Any:
    return now().astimezone(TZ).date()


def _pages(total: int) -> int:
    return max(1, -(-total // PER_PAGE))


def _hardships() -> dict[str, str]:
    return {h.value: label for h, label in HARDSHIP_LABELS.items()}


@blp.route("/field/visits", endpoint="field_visits")
@page(*WORKERS)
def field_visits() -> Any:
    args = forms.parse(forms.VisitListArgs(), request.args)
    rows, total = visits.list_visits(
        db(),
        actor=actor(),
        page=args["page"],
        per_page=PER_PAGE,
        village=args.get("village"),
        hardship=args.get("hardship"),
        visited_from=args.get("start"),
        visited_to=args.get("end"),
    )
    pii = runtime().pii
    return render_template(
        "console/field_visits.html",
        items=[visits.masked_view(v, pii=pii) for v in rows],
        total=total,
        args=args,
        query={k: v for k, v in request.args.items() if k != "page"},
        page_no=args["page"],
        pages=_pages(total),
        villages=helpers.villages_in_scope(db(), actor=actor()),
        hardships=_hardships(),
    )


@blp.route("/field/due", endpoint="field_due")
@page(*WORKERS)
def field_due() -> Any:
    """Households whose next visit is due within the days asked (overdue first)."""
    args = forms.parse(forms.DueArgs(), request.args)
    today = _today()
    result = ledgers.ledger(
        db(),
        ledgers.LedgerFilter(village=args.get("village"), due_by=today + timedelta(args["days"])),
        page=args["page"],
        per_page=PER_PAGE,
        pii=runtime().pii,
        actor=actor(),
        today=today,
    )
    return render_template(
        "console/field_due.html",
        result=result,
        args=args,
        query={k: v for k, v in request.args.items() if k != "page"},
        page_no=args["page"],
        pages=_pages(result.total),
        villages=helpers.villages_in_scope(db(), actor=actor()),
    )


def _ledger_filter(args: dict[str, Any]) -> ledgers.LedgerFilter:
    return ledgers.LedgerFilter(
        town=args.get("town"),
        village=args.get("village"),
        category=args.get("category"),
        hardship=args.get("hardship"),
        overdue_only=args.get("overdue", False),
        name=args.get("name"),
    )


@blp.route("/field/ledgers", endpoint="field_ledgers")
@page(*WORKERS)
def field_ledgers() -> Any:
    args = forms.parse(forms.LedgerArgs(), request.args)
    result = ledgers.ledger(
        db(),
        _ledger_filter(args),
        page=args["page"],
        per_page=PER_PAGE,
        pii=runtime().pii,
        actor=actor(),
        today=_today(),
    )
    query = {k: v for k, v in request.args.items() if k != "page"}
    return render_template(
        "console/field_ledgers.html",
        result=result,
        args=args,
        query=query,
        page_no=args["page"],
        pages=_pages(result.total),
        towns=areas.list_towns(connection()) if actor().role is Role.CENTER_STAFF else [],
        villages=helpers.villages_in_scope(db(), actor=actor()),
        categories=CATEGORIES,
        hardships=_hardships(),
    )


@blp.route("/field/ledgers.xlsx", endpoint="field_ledgers_export")
@page(*WORKERS)
def field_ledgers_export() -> Response:
    """The same ledger as the workbook a town keeps on paper (masked; audited as an export)."""
    args = forms.parse(forms.LedgerArgs(), request.args)
    export = ledgers.export_xlsx(
        db(), _ledger_filter(args), pii=runtime().pii, actor=actor(), now=now()
    )
    response = Response(export.content, mimetype=_XLSX)
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{export.ascii_filename}"; '
        f"filename*=UTF-8''{quote(export.filename)}"
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response
