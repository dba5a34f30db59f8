"""A lead's own life in the console: triage (排除, 已纳入保障, 重新打开), its handler (指派, 认领,
改派), internal notes, and finding a lead by a whole ID or phone number — each through the
API's own service (services/leads/life.py), so the rules, locks and audit rows are the same."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from server.console import forms
from server.console.deps import actor, db, now, runtime
from server.console.security import page
from server.console.views import blp
from server.models import DismissalReason
from server.services.leads import life

TRIAGERS = life.TRIAGERS
NOTE_WRITERS = life.NOTE_WRITERS
SEARCHERS = life.SEARCHERS


def _back(lead_id: int) -> Any:
    return redirect(url_for("console.lead", lead_id=lead_id), 303)


@blp.route("/leads/<int:lead_id>/dismiss", methods=["POST"])
@page(*TRIAGERS)
def dismiss(lead_id: int) -> Any:
    body = forms.parse(forms.DismissForm(), request.form)
    reason = DismissalReason(body["reason"])
    life.dismiss_lead(db(), lead_id, reason=reason, note=body["note"], actor=actor(), now=now())
    flash(f"已排除（{life.DISMISSAL_LABELS[reason]}），30 天内可重新打开", "success")
    return _back(lead_id)


@blp.route("/leads/<int:lead_id>/covered", methods=["POST"])
@page(*TRIAGERS)
def covered(lead_id: int) -> Any:
    body = forms.parse(forms.TriageNoteForm(), request.form)
    life.mark_covered(db(), lead_id, note=body["note"], actor=actor(), now=now())
    flash("已标记为已纳入保障，30 天内可重新打开", "success")
    return _back(lead_id)


@blp.route("/leads/<int:lead_id>/reopen", methods=["POST"])
@page(*TRIAGERS)
def reopen(lead_id: int) -> Any:
    body = forms.parse(forms.TriageNoteForm(), request.form)
    life.reopen_lead(db(), lead_id, note=body["note"], actor=actor(), now=now())
    flash("线索已重新打开", "success")
    return _back(lead_id)


@blp.route("/leads/<int:lead_id>/assign", methods=["POST"])
@page(*TRIAGERS)
def assign(lead_id: int) -> Any:
    body = forms.parse(forms.AssignForm(), request.form)
    life.assign_lead(db(), lead_id, handler_id=body["handler_id"], actor=actor(), now=now())
    flash("已指派经办人" if body["handler_id"] else "已取消指派", "success")
    return _back(lead_id)


@blp.route("/leads/<int:lead_id>/claim", methods=["POST"])
@page(*TRIAGERS)
def claim(lead_id: int) -> Any:
    life.claim_lead(db(), lead_id, actor=actor(), now=now())
    flash("已认领，您是该线索的经办人", "success")
    return _back(lead_id)


@blp.route("/leads/<int:lead_id>/notes", methods=["POST"])
@page(*NOTE_WRITERS)
def note(lead_id: int) -> Any:
    body = forms.parse(forms.NoteForm(), request.form)
    life.add_note(db(), lead_id, text_=body["text"], actor=actor(), now=now())
    flash("备注已保存（仅工作人员可见）", "success")
    return _back(lead_id)


@blp.route("/leads/search", methods=["GET", "POST"])
@page(*SEARCHERS)
def search() -> Any:
    """查找: by a whole ID number or phone number, sent in the form's body (never the URL, so it
    stays out of logs and history); the search is audited by the service."""
    hits = None
    if request.method == "POST":
        body = forms.parse(forms.SearchForm(), request.form)
        hits = life.search_leads(
            db(),
            life.LeadSearch(id_number=body["id_number"], phone=body["phone"]),
            pii=runtime().pii,
            actor=actor(),
            now=now(),
        )
    return render_template("console/search.html", hits=hits)
