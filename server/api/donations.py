"""Donations (捐赠): recorded, receipted and allocated by the center; the books and their
export; the public summary for 公示 (no login, no names)."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.deps import current_actor, db, now, public, requires, runtime
from server.api.paging import NumberedPageSchema, PageArgsSchema
from server.fields import Money
from server.models import DonationKind, DonorKind
from server.services.social import donations

blp = Blueprint("donations", __name__, url_prefix="/api/v1", description="Donations")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
#: Yuan or a quantity: up to 1,000,000,000 with 2 decimals (apispec renders Decimal bounds as
#: strings; document them as numbers).
_MAX = 1_000_000_000


def _quantity(description: str, **kwargs: Any) -> fields.Decimal:
    return fields.Decimal(
        places=2,
        validate=validate.Range(min=0, min_inclusive=False, max=_MAX, error="应大于0且不超过10亿"),
        metadata={
            "description": description,
            "minimum": 0,
            "exclusiveMinimum": True,
            "maximum": _MAX,
        },
        **kwargs,
    )


def _text(max_len: int, *, min_len: int = 0, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=min_len, max=max_len), **kwargs)


class DonorInSchema(Schema):
    name = _text(100, min_len=1, required=True)
    kind = fields.String(
        load_default=DonorKind.PERSON.value, validate=validate.OneOf([k.value for k in DonorKind])
    )
    org_id = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=2**53)
    )
    phone = _text(30, load_default=None, allow_none=True)


class DonationCreateSchema(Schema):
    donor = fields.Nested(DonorInSchema, required=True)
    kind = fields.String(required=True, validate=validate.OneOf([k.value for k in DonationKind]))
    amount = _quantity("money: yuan", load_default=None, allow_none=True)
    items = _text(200, load_default=None, allow_none=True, metadata={"description": "goods"})
    quantity = _quantity("goods: how many", load_default=None, allow_none=True)
    unit = _text(10, load_default=None, allow_none=True, metadata={"description": "床, 袋…"})
    received_on = fields.Date(load_default=None, allow_none=True)
    purpose = _text(
        100,
        load_default=None,
        allow_none=True,
        metadata={"description": "restricted purpose (定向用途); null: general"},
    )
    note = _text(500, load_default=None, allow_none=True)


class DonorSchema(Schema):
    name = fields.String(required=True)
    kind = fields.String(required=True)
    kind_label = fields.String(required=True)
    org_id = fields.Integer(allow_none=True)
    phone = fields.String(allow_none=True, metadata={"description": "masked"})


class AllocationSchema(Schema):
    id = fields.Integer(required=True)
    household_id = fields.Integer(allow_none=True)
    household_head = fields.String(allow_none=True)
    fund = fields.String(allow_none=True)
    quantity = Money(required=True, places=None)
    allocated_on = fields.Date(required=True)
    note = fields.String(allow_none=True)


class DonationSchema(Schema):
    id = fields.Integer(required=True)
    number = fields.String(required=True, metadata={"description": "receipt number"})
    donor = fields.Nested(DonorSchema, required=True)
    kind = fields.String(required=True)
    items = fields.String(allow_none=True)
    unit = fields.String(allow_none=True)
    total = Money(required=True)
    allocated = Money(required=True)
    remaining = Money(required=True)
    received_on = fields.Date(required=True)
    purpose = fields.String(allow_none=True)
    note = fields.String(allow_none=True)
    text = fields.String(required=True)
    allocations = fields.List(fields.Nested(AllocationSchema), required=True)
    created_at = fields.DateTime(required=True)


class DonationPageSchema(NumberedPageSchema):
    items = fields.List(fields.Nested(DonationSchema), required=True)


class DonationFilterSchema(PageArgsSchema):
    purpose = _text(100, min_len=1)


class AllocationCreateSchema(Schema):
    quantity = _quantity("yuan (money) or how many (goods)", required=True)
    household_id = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=1, max=2**53)
    )
    fund = _text(
        100,
        load_default=None,
        allow_none=True,
        metadata={"description": "a fund instead of a household (二选一)"},
    )
    note = _text(500, load_default=None, allow_none=True)


class BookLineSchema(Schema):
    key = fields.String(required=True, metadata={"description": "donor or purpose"})
    kind = fields.String(required=True)
    unit = fields.String(allow_none=True)
    received = Money(required=True)
    allocated = Money(required=True)
    left = Money(required=True)


class BooksSchema(Schema):
    by_donor = fields.List(fields.Nested(BookLineSchema), required=True)
    by_purpose = fields.List(fields.Nested(BookLineSchema), required=True)


class PublicGoodsSchema(Schema):
    items = fields.String(required=True, metadata={"description": "what was given (大米)"})
    unit = fields.String(required=True, metadata={"description": "its unit (袋); may be empty"})
    received = Money(required=True, places=None)
    allocated = Money(required=True, places=None)


class PublicLineSchema(Schema):
    month = fields.String(required=True)
    purpose = fields.String(required=True)
    money_received = Money(required=True)
    money_allocated = Money(required=True)
    goods_received = fields.Integer(required=True, metadata={"description": "donations of goods"})
    goods_allocations = fields.Integer(required=True)
    goods = fields.List(
        fields.Nested(PublicGoodsSchema),
        required=True,
        metadata={"description": "goods by item and unit: received and allocated that month"},
    )
    households_helped = fields.Integer(required=True)


class PublicSummarySchema(Schema):
    items = fields.List(fields.Nested(PublicLineSchema), required=True)


def _view(donation: Any) -> dict[str, Any]:
    return donations.donation_view(db(), donation, pii=runtime().pii)


@blp.route("/donations", methods=["POST"])
@requires(*donations.KEEPERS)
@blp.arguments(DonationCreateSchema)
@blp.response(201, DonationSchema)
def receive_donation(body: dict[str, Any]) -> Any:
    """Record a donation of money (amount) or goods (items, quantity, unit) with its donor and
    restricted purpose; it gets its receipt number. Audited."""
    donation = donations.receive_donation(
        db(), body=body, pii=runtime().pii, actor=current_actor(), now=now()
    )
    return _view(donation)


@blp.route("/donations", methods=["GET"])
@requires(*donations.READERS)
@blp.arguments(DonationFilterSchema, location="query")
@blp.response(200, DonationPageSchema)
def list_donations(args: dict[str, Any]) -> Any:
    rows, total = donations.list_donations(
        db(),
        actor=current_actor(),
        page=args["page"],
        per_page=args["per_page"],
        purpose=args.get("purpose"),
    )
    return {
        "items": [_view(d) for d in rows],
        "total": total,
        "page": args["page"],
        "per_page": args["per_page"],
    }


@blp.route("/donations/books", methods=["GET"])
@requires(*donations.READERS)
@blp.response(200, BooksSchema)
def donation_books() -> Any:
    """Received, allocated and left per donor and per purpose."""
    return donations.books(db(), actor=current_actor())


@blp.route("/donations/books.xlsx", methods=["GET"])
@requires(*donations.READERS)
@blp.response(200, content_type=XLSX, description="xlsx workbook (no recipient's name)")
def donation_books_xlsx() -> Any:
    """The books as a workbook (按捐赠人, 按用途). The export is audited."""
    content, filename = donations.export_books(db(), actor=current_actor(), now=now())
    return Response(
        content,
        mimetype=XLSX,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "private, no-store",
        },
    )


@blp.route("/donations/<int:donation_id>", methods=["GET"])
@requires(*donations.READERS)
@blp.response(200, DonationSchema)
def get_donation(donation_id: int) -> Any:
    return _view(donations.access_donation_by_id(db(), donation_id, actor=current_actor()))


@blp.route("/donations/<int:donation_id>/receipt.html", methods=["GET"])
@requires(*donations.READERS)
@blp.response(200, {"type": "string"}, content_type="text/html")
def donation_receipt(donation_id: int) -> Response:
    """The printable receipt (捐赠收据) with its number. Each print is audited."""
    html = donations.receipt_html(db(), donation_id, actor=current_actor(), now=now())
    response = Response(html, mimetype="text/html")
    response.headers["Cache-Control"] = "private, no-store"
    return response


@blp.route("/donations/<int:donation_id>/allocations", methods=["POST"])
@requires(*donations.KEEPERS)
@blp.arguments(AllocationCreateSchema)
@blp.response(201, DonationSchema)
def allocate(body: dict[str, Any], donation_id: int) -> Any:
    """Give part of a donation to a household (it shows on the household's chain) or to a
    fund. More than remains is 409 `donation_exhausted`, also when another allocation took it
    a moment before. Audited."""
    donations.allocate(
        db(),
        donation_id,
        quantity=body["quantity"],
        family_id=body.get("household_id"),
        fund=body.get("fund"),
        note=body.get("note"),
        actor=current_actor(),
        now=now(),
    )
    db().expire_all()
    return _view(donations.access_donation_by_id(db(), donation_id, actor=current_actor()))


@blp.route("/public/donations", methods=["GET"])
@public
@blp.response(200, PublicSummarySchema)
def public_donations() -> Any:
    """公示: donations received and allocated, by month and purpose, and how many households
    were helped. No login; no donor's or recipient's name."""
    return donations.public_summary(db())
