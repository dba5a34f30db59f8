"""公开信息: the policy texts residents read before applying and the phone numbers they call
(the district hotline, each town's platform, other lines) — edited by the center through the
services the API's `/api/v1/policies` and `/api/v1/contacts` routes call (audited there)."""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, render_template, request, url_for

from server.console import forms
from server.console.deps import actor, db, now
from server.console.security import page
from server.console.views import blp
from server.models import ContactKind, Role
from server.services.places import public_info

EDITORS = (Role.CENTER_STAFF,)


def _lines(raw: str) -> list[str]:
    return [line.strip() for line in raw.splitlines() if line.strip()]


def _policy_body(body: dict[str, Any]) -> dict[str, Any]:
    return {
        **body,
        "eligibility": _lines(body.get("eligibility", "")),
        "documents": _lines(body.get("documents", "")),
    }


@blp.route("/public-info", endpoint="public_info")
@page(*EDITORS)
def public_info_page() -> Any:
    return render_template(
        "console/public_info.html",
        policies=public_info.list_policies(db()),
        contacts=public_info.list_contacts(db()),
        other=ContactKind.OTHER,
    )


@blp.route("/public-info/policies", methods=["POST"])
@page(*EDITORS)
def public_policy_add() -> Any:
    body = forms.parse(forms.NewPolicyForm(), request.form)
    code = body.pop("code")
    policy = public_info.save_policy(db(), code, body=_policy_body(body), actor=actor(), now=now())
    flash(f"已保存“{policy.title}”", "success")
    return redirect(url_for("console.public_info"), 303)


@blp.route("/public-info/policies/<string:code>", methods=["POST"])
@page(*EDITORS)
def public_policy_save(code: str) -> Any:
    body = forms.parse(forms.PolicyForm(), request.form)
    policy = public_info.save_policy(db(), code, body=_policy_body(body), actor=actor(), now=now())
    flash(f"已保存“{policy.title}”", "success")
    return redirect(url_for("console.public_info") + f"#policy-{policy.code}", 303)


@blp.route("/public-info/contacts", methods=["POST"])
@page(*EDITORS)
def public_contact_add() -> Any:
    body = forms.parse(forms.ContactForm(), request.form)
    contact = public_info.add_contact(
        db(), body={**body, "kind": ContactKind.OTHER.value}, actor=actor(), now=now()
    )
    flash(f"已添加“{contact.name}”", "success")
    return redirect(url_for("console.public_info"), 303)


@blp.route("/public-info/contacts/<int:contact_id>", methods=["POST"])
@page(*EDITORS)
def public_contact_save(contact_id: int) -> Any:
    body = forms.parse(forms.ContactForm(), request.form)
    changes = {**body, "note": body.get("note"), "address": body.get("address")}
    contact = public_info.edit_contact(db(), contact_id, changes=changes, actor=actor(), now=now())
    flash(f"已保存“{contact.name}”", "success")
    return redirect(url_for("console.public_info") + f"#contact-{contact.id}", 303)


@blp.route("/public-info/contacts/<int:contact_id>/remove", methods=["POST"])
@page(*EDITORS)
def public_contact_remove(contact_id: int) -> Any:
    public_info.remove_contact(db(), contact_id, actor=actor(), now=now())
    flash("已删除该电话", "success")
    return redirect(url_for("console.public_info"), 303)
