"""The printed A4 slip: what it shows (the whole ID and phone numbers, so printing is recorded
as an unmasked view) and its page, from `templates/slip.html` with a QR code of its number.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import Environment
from sqlalchemy.orm import Session

from server.clock import TZ
from server.models import (
    Dispatch,
    Lead,
    Town,
    User,
)
from server.services.dispatches.access import STATE_LABELS, unit_name
from server.services.kernel import idnumber
from server.services.kernel.access import Actor
from server.services.kernel.audit import record_unmasked_view
from server.services.kernel.pii import PersonalData
from server.services.kernel.qr import qr_data_uri
from server.services.leads.core import CATEGORIES as CATEGORY_LABELS


def slip_context(
    db: Session,
    dispatch: Dispatch,
    *,
    pii: PersonalData,
    actor: Actor,
    now: datetime,
) -> dict[str, Any]:
    """What the printed A4 slip shows. The receiving unit needs the whole ID and phone numbers to
    find the person, so the slip carries them, and printing it is recorded as an unmasked view."""
    lead = db.get(Lead, dispatch.lead_id)
    assert lead is not None
    town = db.get(Town, lead.town_id) if lead.town_id else None
    issuer = db.get(User, dispatch.issued_by_id) if dispatch.issued_by_id else None
    id_number = pii.open(lead.id_number_enc)
    phone = pii.open(lead.phone_enc)
    shown = [name for name, value in (("id_number", id_number), ("phone", phone)) if value]
    if shown:
        record_unmasked_view(
            db,
            actor=actor,
            target_type="dispatch",
            target_id=dispatch.id,
            fields=shown,
            now=now,
            purpose="print_slip",
        )
        db.flush()
    return {
        "number": dispatch.number,
        "unit_name": unit_name(db, dispatch),
        "issued_at": dispatch.issued_at.astimezone(TZ),
        "issuer": (issuer.display_name or issuer.username) if issuer else "",
        "due_date": dispatch.due_date,
        "due_certain": dispatch.due_certain,
        "name": lead.name,
        "id_number": id_number or "",
        "id_number_masked": idnumber.mask(id_number) or "",
        "phone": phone or "",
        "town": town.name if town else "",
        "address": lead.address or "",
        "categories": list(lead.categories),
        "instructions": dispatch.instructions,
        "state_label": STATE_LABELS[dispatch.state],
    }


#: The slip's page (Jinja, autoescaped), read when a slip is printed.
SLIP_TEMPLATE = Path(__file__).with_name("templates") / "slip.html"


def slip_html(context: dict[str, Any]) -> str:
    """The printable A4 slip, with a QR code (inline PNG data URI) of the slip number."""
    env = Environment(autoescape=True)
    categories = [CATEGORY_LABELS.get(c, c) for c in context["categories"]]
    return env.from_string(SLIP_TEMPLATE.read_text(encoding="utf-8")).render(
        s={**context, "categories": categories}, qr=qr_data_uri(context["number"])
    )
