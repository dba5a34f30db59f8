"""Households (户): read, edit, move members, the household chain, and aid granted (救助台账)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate

from server.api.deps import current_actor, db, now, requires, runtime
from server.api.paging import NumberedPageSchema, PageArgsSchema
from server.fields import Money, Text
from server.services.households import aid, chain, editing, members
from server.services.households.members import EDITORS, READERS

blp = Blueprint("households", __name__, url_prefix="/api/v1", description="Households and aid")


_ID = validate.Range(min=1, max=2**53)


# --- Schemas --------------------------------------------------------------------------------


class AidDatesSchema(Schema):
    """What a decision granting aid adds for the 救助台账 (both optional)."""

    start_on = fields.Date(
        load_default=None, allow_none=True, metadata={"description": "default: today"}
    )
    review_on = fields.Date(
        load_default=None,
        allow_none=True,
        metadata={"description": "复核; default: a year on for 低保/特困, none for one-off aid"},
    )


def aid_field() -> fields.Nested:
    return fields.Nested(AidDatesSchema, load_default=None, allow_none=True)


def aid_dates(body: dict[str, Any]) -> dict[str, Any]:
    """`Decision` keyword arguments from a decision body's optional `aid` block."""
    block = body.get("aid") or {}
    return {"aid_start_on": block.get("start_on"), "aid_review_on": block.get("review_on")}


class AreaSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class HouseholdMemberSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    relation = fields.String(required=True, metadata={"description": "to the head (户主, 配偶…)"})
    is_head = fields.Boolean(required=True)
    id_number = fields.String(allow_none=True, metadata={"description": "masked"})
    source = fields.String(required=True)
    joined_at = fields.DateTime(required=True)
    left_at = fields.DateTime(allow_none=True)
    moved_to_household_id = fields.Integer(allow_none=True)
    left_reason = fields.String(allow_none=True)


class HouseholdSchema(Schema):
    id = fields.Integer(required=True)
    head_name = fields.String(allow_none=True)
    town = fields.Nested(AreaSchema, allow_none=True)
    village = fields.Nested(AreaSchema, allow_none=True)
    address = fields.String(allow_none=True)
    source = fields.String(required=True)
    version = fields.Integer(required=True)
    members = fields.List(fields.Nested(HouseholdMemberSchema), required=True)
    former_members = fields.List(fields.Nested(HouseholdMemberSchema), required=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)


class HouseholdPageSchema(NumberedPageSchema):
    items = fields.List(fields.Nested(HouseholdSchema), required=True)


class HouseholdFilterSchema(PageArgsSchema):
    town = Text(32, metadata={"description": "town code"})
    village = Text(32, metadata={"description": "village code"})
    name = Text(50, min_len=1, metadata={"description": "part of a current member's name"})


class PersonInSchema(Schema):
    name = Text(50, min_len=1, required=True)
    id_number = Text(40, load_default=None, allow_none=True)


class HouseholdMemberInSchema(PersonInSchema):
    relation = Text(20, min_len=1, required=True, metadata={"description": "to the head"})


class HouseholdCreateSchema(Schema):
    village = Text(32, min_len=1, required=True, metadata={"description": "village code"})
    address = Text(200, multi_line=True, load_default=None, allow_none=True)
    head = fields.Nested(PersonInSchema, required=True)
    members = fields.List(
        fields.Nested(HouseholdMemberInSchema), load_default=list, validate=validate.Length(max=30)
    )


class HouseholdEditSchema(Schema):
    version = fields.Integer(validate=validate.Range(min=1, max=2**31), load_default=None)
    address = Text(200, multi_line=True, allow_none=True)
    village = Text(32, min_len=1, metadata={"description": "village code (editor's area)"})


class HouseholdMemberEditSchema(Schema):
    name = Text(50, min_len=1)
    relation = Text(20, min_len=1)
    is_head = fields.Boolean(metadata={"description": "make this member the head"})
    former_head_relation = Text(
        20, min_len=1, metadata={"description": "the old head's relation to the new head"}
    )


class MoveSchema(Schema):
    to_household_id = fields.Integer(required=True, validate=_ID)
    relation = Text(20, min_len=1, required=True, metadata={"description": "to the new head"})
    reason = Text(200, multi_line=True, load_default=None, allow_none=True)


class LeaveSchema(Schema):
    reason = Text(
        200, multi_line=True, min_len=1, required=True, metadata={"description": "去世, 迁出本区…"}
    )


class ChainItemSchema(Schema):
    at = fields.DateTime(required=True)
    kind = fields.String(required=True, metadata={"enum": list(chain.KINDS)})
    title = fields.String(required=True)
    member = fields.String(allow_none=True)
    ref_type = fields.String(allow_none=True)
    ref_id = fields.Integer(allow_none=True)
    detail = fields.Dict(required=True)


class DueSchema(Schema):
    due_on = fields.Date(required=True)
    kind = fields.String(required=True)
    title = fields.String(required=True)
    overdue = fields.Boolean(required=True)
    ref_type = fields.String(allow_none=True)
    ref_id = fields.Integer(allow_none=True)


class ChainSchema(Schema):
    household_id = fields.Integer(required=True)
    head_name = fields.String(allow_none=True)
    items = fields.List(fields.Nested(ChainItemSchema), required=True)
    due = fields.List(fields.Nested(DueSchema), required=True)
    next_due = fields.Nested(DueSchema, allow_none=True)


class AidGrantSchema(Schema):
    id = fields.Integer(required=True)
    household_id = fields.Integer(required=True)
    household_version = fields.Integer(allow_none=True)
    application_id = fields.Integer(
        allow_none=True, metadata={"description": "the application whose decision granted it"}
    )
    dispatch_id = fields.Integer(
        allow_none=True,
        metadata={"description": "or the transfer slip whose one outcome granted it"},
    )
    name = fields.String(required=True)
    kind = fields.String(required=True)
    kind_label = fields.String(required=True)
    period = fields.String(required=True, metadata={"enum": ["monthly", "one_off"]})
    amount = Money(allow_none=True, places=None)
    start_on = fields.Date(required=True)
    review_on = fields.Date(allow_none=True)
    review_due = fields.Boolean(required=True)
    reviewed_at = fields.DateTime(allow_none=True)
    review_note = fields.String(allow_none=True)
    granted_at = fields.DateTime(required=True)
    text = fields.String(required=True)


class AidGrantPageSchema(NumberedPageSchema):
    items = fields.List(fields.Nested(AidGrantSchema), required=True)


class AidFilterSchema(PageArgsSchema):
    due = fields.Boolean(load_default=False, metadata={"description": "review date passed"})


class AidReviewSchema(Schema):
    next_review_on = fields.Date(
        required=True, allow_none=True, metadata={"description": "null: no further review"}
    )
    note = Text(500, multi_line=True, min_len=1, required=True)


# --- Views ----------------------------------------------------------------------------------


def _view(family: Any) -> dict[str, Any]:
    return members.family_view(db(), family, pii=runtime().pii)


def _reloaded(family_id: int) -> dict[str, Any]:
    db().expire_all()
    return _view(members.access_family_by_id(db(), family_id, actor=current_actor()))


@blp.route("/households")
@requires(*READERS)
@blp.arguments(HouseholdFilterSchema, location="query")
@blp.response(200, HouseholdPageSchema)
def list_households(args: dict[str, Any]) -> Any:
    """Households in my area (town staff: their town; helpers: their village), newest first;
    ID numbers masked."""
    rows, total = members.list_families(
        db(),
        actor=current_actor(),
        town_code=args.get("town"),
        village_code=args.get("village"),
        name=args.get("name"),
        page=args["page"],
        per_page=args["per_page"],
    )
    return {
        "items": [_view(f) for f in rows],
        "total": total,
        "page": args["page"],
        "per_page": args["per_page"],
    }


@blp.route("/households", methods=["POST"])
@requires(*EDITORS)
@blp.arguments(HouseholdCreateSchema)
@blp.response(201, HouseholdSchema)
def create_household(body: dict[str, Any]) -> Any:
    """Open a household in my area with its head (and members); a person already in another
    household is 409 `member_elsewhere` (move them instead). Audited."""
    family = editing.create_family(
        db(), body=body, pii=runtime().pii, actor=current_actor(), now=now()
    )
    return _reloaded(family.id)


@blp.route("/households/<int:household_id>")
@requires(*READERS)
@blp.response(200, HouseholdSchema)
def get_household(household_id: int) -> Any:
    """One household: current members (relation to the head, masked ID) and former ones."""
    return _view(members.access_family_by_id(db(), household_id, actor=current_actor()))


@blp.route("/households/<int:household_id>", methods=["PATCH"])
@requires(*EDITORS)
@blp.arguments(HouseholdEditSchema)
@blp.response(200, HouseholdSchema)
def edit_household(body: dict[str, Any], household_id: int) -> Any:
    """Change the address (or the village, within my area); a stale `version` is 409."""
    editing.edit_family(db(), household_id, body=body, actor=current_actor(), now=now())
    return _reloaded(household_id)


@blp.route("/households/<int:household_id>/members", methods=["POST"])
@requires(*EDITORS)
@blp.arguments(HouseholdMemberInSchema)
@blp.response(201, HouseholdSchema)
def add_member(body: dict[str, Any], household_id: int) -> Any:
    """Add a member; someone already in another household is 409 `member_elsewhere`."""
    editing.add_member(
        db(), household_id, body=body, pii=runtime().pii, actor=current_actor(), now=now()
    )
    return _reloaded(household_id)


@blp.route("/households/<int:household_id>/members/<int:member_id>", methods=["PATCH"])
@requires(*EDITORS)
@blp.arguments(HouseholdMemberEditSchema)
@blp.response(200, HouseholdSchema)
def edit_member(body: dict[str, Any], household_id: int, member_id: int) -> Any:
    """Correct a member's name or relation, or make them the head."""
    editing.edit_member(db(), household_id, member_id, body=body, actor=current_actor(), now=now())
    return _reloaded(household_id)


@blp.route("/households/<int:household_id>/members/<int:member_id>/move", methods=["POST"])
@requires(*EDITORS)
@blp.arguments(MoveSchema)
@blp.response(200, HouseholdSchema)
def move_member(body: dict[str, Any], household_id: int, member_id: int) -> Any:
    """Move a member to another household in my area: the old membership is kept as history
    (left, and where to). Answers with the household they joined."""
    editing.move_member(
        db(),
        household_id,
        member_id,
        to_family_id=body["to_household_id"],
        relation=body["relation"],
        reason=body.get("reason"),
        actor=current_actor(),
        now=now(),
    )
    return _reloaded(body["to_household_id"])


@blp.route("/households/<int:household_id>/members/<int:member_id>/leave", methods=["POST"])
@requires(*EDITORS)
@blp.arguments(LeaveSchema)
@blp.response(200, HouseholdSchema)
def member_leaves(body: dict[str, Any], household_id: int, member_id: int) -> Any:
    """A member leaves the household (died, moved out of the district); kept as history."""
    editing.remove_member(
        db(), household_id, member_id, reason=body["reason"], actor=current_actor(), now=now()
    )
    return _reloaded(household_id)


@blp.route("/households/<int:household_id>/chain")
@requires(*READERS)
@blp.response(200, ChainSchema)
def household_chain(household_id: int) -> Any:
    """一户一链: in time order every lead of every member and what fed it, applications and
    decisions, slips and feedback, aid granted, visits and findings, revisits and satisfaction,
    donations and services received; then what is due (a visit, a slip, a revisit, a review of
    the aid, an assigned service), soonest first, and `next_due`."""
    return chain.chain(db(), household_id, actor=current_actor(), now=now())


@blp.route("/aid-grants")
@requires(*aid.READERS)
@blp.arguments(AidFilterSchema, location="query")
@blp.response(200, AidGrantPageSchema)
def list_aid_grants(args: dict[str, Any]) -> Any:
    """Aid granted (救助台账) in my area; `due=true`: grants whose review date has passed,
    longest overdue first (the town's worklist)."""
    today = now().date()
    rows, total = aid.list_grants(
        db(),
        actor=current_actor(),
        today=today,
        due=args["due"],
        page=args["page"],
        per_page=args["per_page"],
    )
    return {
        "items": [aid.grant_view(db(), g, today=today) for g in rows],
        "total": total,
        "page": args["page"],
        "per_page": args["per_page"],
    }


@blp.route("/aid-grants/<int:grant_id>/review", methods=["POST"])
@requires(*aid.REVIEWERS)
@blp.arguments(AidReviewSchema)
@blp.response(200, AidGrantSchema)
def review_aid_grant(body: dict[str, Any], grant_id: int) -> Any:
    """Record a review (复核) of aid in my town: what was found and the next review date
    (null: none). Audited."""
    grant = aid.review_aid(
        db(),
        grant_id,
        next_review_on=body["next_review_on"],
        note=body["note"],
        actor=current_actor(),
        now=now(),
    )
    return aid.grant_view(db(), grant, today=now().date())
