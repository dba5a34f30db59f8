"""The lead queue: list and read leads, register reports from other channels, merge duplicates."""

from __future__ import annotations

from json.encoder import encode_basestring as _string
from typing import Any

from flask import Response
from flask_smorest import Blueprint
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from server.api.deps import (
    IDEMPOTENCY_HEADER,
    connection,
    current_actor,
    db,
    idempotency_key,
    now,
    read_only,
    requires,
    runtime,
)
from server.api.paging import page_size
from server.fields import Text
from server.models import Channel, DismissalReason, LeadStatus, Role
from server.services.households import members as household_members
from server.services.leads import access, detail, intake, life, merging, queue
from server.services.leads.core import CATEGORIES
from server.services.leads.intake import REPORT_CHANNELS

blp = Blueprint("leads", __name__, url_prefix="/api/v1", description="The lead queue")

#: Who may read the queue; each sees only their jurisdiction (see services/leads/core.scope_leads).
READERS = (
    Role.CENTER_STAFF,
    Role.LEADER,
    Role.TOWN_STAFF,
    Role.DEPARTMENT_STAFF,
    Role.HELPER,
)
#: Who registers reports and merges or separates leads.
HANDLERS = (Role.CENTER_STAFF, Role.TOWN_STAFF)


# --- Schemas --------------------------------------------------------------------------------


class QueueArgsSchema(Schema):
    status = fields.String(
        validate=validate.OneOf([s.value for s in LeadStatus]),
        metadata={"description": "default: every open lead"},
    )
    channel = fields.String(
        validate=validate.OneOf([c.value for c in Channel]),
        metadata={"description": "the channel of the lead's first signal"},
    )
    feed = Text(40, metadata={"description": "feed code: leads with evidence from that feed"})
    town = Text(32, metadata={"description": "town code"})
    village = Text(32, metadata={"description": "village code"})
    category = fields.String(validate=validate.OneOf(list(CATEGORIES)))
    min_priority = fields.Integer(validate=validate.Range(min=-1000, max=1_000_000))
    created_from = fields.Date(metadata={"description": "created on or after (Shanghai date)"})
    created_to = fields.Date(metadata={"description": "created on or before (Shanghai date)"})
    name = Text(
        50,
        min_len=1,
        metadata={"description": "part of the name, or its pinyin from the start (zhang san)"},
    )
    handler = fields.String(
        validate=validate.Regexp(r"^(me|[1-9][0-9]{0,15})$", error="请填写经办人编号或 me"),
        metadata={"description": "leads this staff member handles (a user id, or `me`)"},
    )
    unassigned = fields.Boolean(metadata={"description": "true: leads nobody handles yet"})
    cursor = Text(200, metadata={"description": "opaque: `next_cursor` of the previous page"})
    limit = page_size()

    @validates_schema
    def _one_handler_filter(self, data: dict[str, Any], **_: Any) -> None:
        if "handler" in data and data.get("unassigned"):
            raise ValidationError("经办人与“未指派”不能同时筛选", field_name="unassigned")


class QueueItemSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True)
    channel = fields.String(required=True)
    priority = fields.Integer(required=True)
    priority_reasons = fields.List(fields.String(), required=True)
    categories = fields.List(fields.String(), required=True)
    town_id = fields.Integer(allow_none=True)
    village_id = fields.Integer(allow_none=True)
    has_id_number = fields.Boolean(required=True)
    created_at = fields.DateTime(required=True)
    handler_id = fields.Integer(allow_none=True)
    household = fields.Nested(
        "QueueHouseholdSchema",
        allow_none=True,
        metadata={"description": "the person's household and its other open leads (not scored)"},
    )


class QueueHouseholdSchema(Schema):
    id = fields.Integer(required=True)
    other_open_leads = fields.List(fields.Integer(), required=True)


class QueuePageSchema(Schema):
    items = fields.List(fields.Nested(QueueItemSchema), required=True)
    next_cursor = fields.String(
        allow_none=True, metadata={"description": "pass as `cursor` for the next page; null: end"}
    )


class LeadAreaSchema(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)


class ReporterViewSchema(Schema):
    name = fields.String(allow_none=True)
    organisation = fields.String(allow_none=True)
    phone = fields.String(allow_none=True, metadata={"description": "masked"})


class EvidenceSchema(Schema):
    id = fields.Integer(required=True)
    channel = fields.String(required=True)
    feed_code = fields.String(allow_none=True)
    batch_id = fields.Integer(allow_none=True)
    row_number = fields.Integer(allow_none=True)
    source_type = fields.String(allow_none=True)
    source_id = fields.Integer(allow_none=True)
    department_id = fields.Integer(allow_none=True)
    summary = fields.String(required=True)
    facts = fields.Dict(required=True)
    event_date = fields.Date(allow_none=True)
    reporter = fields.Nested(ReporterViewSchema, allow_none=True)
    created_at = fields.DateTime(required=True)


class MergeRefSchema(Schema):
    id = fields.Integer(required=True)
    source_lead_id = fields.Integer(required=True)
    target_lead_id = fields.Integer(required=True)
    merged_at = fields.DateTime(required=True)
    undone_at = fields.DateTime(allow_none=True)


class LeadHouseholdLeadSchema(Schema):
    lead_id = fields.Integer(required=True)
    name = fields.String(required=True)
    relation = fields.String(required=True, metadata={"description": "to the head"})
    status = fields.String(required=True)
    priority = fields.Integer(required=True)


class LeadHouseholdSchema(Schema):
    id = fields.Integer(required=True)
    head_name = fields.String(allow_none=True)
    relation = fields.String(required=True, metadata={"description": "the lead's person's"})
    members = fields.Integer(required=True, metadata={"description": "current members"})
    other_open_leads = fields.List(
        fields.Nested(LeadHouseholdLeadSchema),
        required=True,
        metadata={"description": "shown, not scored: no lead's priority changes"},
    )


class PersonRefSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(allow_none=True)


class LeadEventSchema(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(
        required=True,
        metadata={
            "description": "dismissed, covered, reopened, assigned, claimed, reassigned, "
            "unassigned, note"
        },
    )
    label = fields.String(required=True)
    at = fields.DateTime(required=True)
    actor = fields.Nested(PersonRefSchema, allow_none=True)
    handler = fields.Nested(PersonRefSchema, allow_none=True)
    previous_handler = fields.Nested(PersonRefSchema, allow_none=True)
    reason = fields.String(allow_none=True)
    reason_label = fields.String(allow_none=True)
    text = fields.String(allow_none=True, metadata={"description": "staff only"})


class LeadSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True)
    channel = fields.String(required=True)
    priority = fields.Integer(required=True)
    priority_reasons = fields.List(fields.String(), required=True)
    categories = fields.List(fields.String(), required=True)
    category_labels = fields.List(fields.String(), required=True)
    id_number = fields.String(allow_none=True, metadata={"description": "masked"})
    phone = fields.String(allow_none=True, metadata={"description": "masked"})
    town = fields.Nested(LeadAreaSchema, allow_none=True)
    village = fields.Nested(LeadAreaSchema, allow_none=True)
    address = fields.String(allow_none=True)
    previous_lead_id = fields.Integer(allow_none=True)
    merged_into_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime(required=True)
    updated_at = fields.DateTime(required=True)
    triaged_at = fields.DateTime(allow_none=True)
    dispatched_at = fields.DateTime(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    evidence = fields.List(fields.Nested(EvidenceSchema), required=True)
    merges = fields.List(fields.Nested(MergeRefSchema), required=True)
    household = fields.Nested(
        LeadHouseholdSchema,
        allow_none=True,
        metadata={"description": "the person's household and its other open leads"},
    )
    handler = fields.Nested(PersonRefSchema, allow_none=True)
    assigned_at = fields.DateTime(allow_none=True)
    dismissed_at = fields.DateTime(allow_none=True)
    dismissal_reason = fields.String(allow_none=True)
    dismissal_reason_label = fields.String(allow_none=True)
    dismissal_note = fields.String(allow_none=True, metadata={"description": "staff only"})
    covered_at = fields.DateTime(allow_none=True)
    reopened_at = fields.DateTime(allow_none=True)
    reopen_until = fields.DateTime(
        allow_none=True, metadata={"description": "a dismissed or covered lead reopens until"}
    )
    timeline = fields.List(
        fields.Nested(LeadEventSchema),
        required=True,
        metadata={"description": "the lead's own steps; notes for staff only"},
    )


class ReporterSchema(Schema):
    name = Text(50, load_default=None, allow_none=True)
    organisation = Text(100, load_default=None, allow_none=True)
    phone = Text(30, load_default=None, allow_none=True)


class ReportCreateSchema(Schema):
    channel = fields.String(
        required=True, validate=validate.OneOf([c.value for c in REPORT_CHANNELS])
    )
    name = Text(50, min_len=1, required=True)
    summary = Text(
        500,
        multi_line=True,
        min_len=1,
        required=True,
        metadata={"description": "what the reporter said"},
    )
    id_number = Text(40, load_default=None, allow_none=True)
    phone = Text(30, load_default=None, allow_none=True, metadata={"description": "the person's"})
    town = Text(32, load_default=None, allow_none=True, metadata={"description": "town code"})
    village = Text(32, load_default=None, allow_none=True, metadata={"description": "village code"})
    address = Text(200, multi_line=True, load_default=None, allow_none=True)
    categories = fields.List(
        fields.String(validate=validate.OneOf(list(CATEGORIES))),
        load_default=list,
        validate=validate.Length(max=len(CATEGORIES)),
    )
    event_date = fields.Date(load_default=None, allow_none=True)
    urgent = fields.Boolean(load_default=False)
    reporter = fields.Nested(ReporterSchema, load_default=None, allow_none=True)


class CandidateSchema(Schema):
    lead_id = fields.Integer(required=True)
    name = fields.String(required=True)
    score = fields.Integer(required=True, metadata={"description": "0–100"})
    reasons = fields.List(fields.String(), required=True)
    status = fields.String(required=True)
    priority = fields.Integer(required=True)
    has_id_number = fields.Boolean(required=True)
    town_id = fields.Integer(allow_none=True)
    village_id = fields.Integer(allow_none=True)
    created_at = fields.DateTime(required=True)


class ReportResultSchema(Schema):
    lead = fields.Nested(LeadSchema, required=True)
    lead_created = fields.Boolean(required=True)
    candidates = fields.List(fields.Nested(CandidateSchema), required=True)


class CandidateListSchema(Schema):
    candidates = fields.List(fields.Nested(CandidateSchema), required=True)


class MergeSchema(Schema):
    into_lead_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**53))


class KeepApartSchema(Schema):
    other_lead_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**53))
    reason = Text(200, multi_line=True, load_default=None, allow_none=True)


class DismissalSchema(Schema):
    lead_low_id = fields.Integer(required=True)
    lead_high_id = fields.Integer(required=True)
    reason = fields.String(allow_none=True)
    dismissed_at = fields.DateTime(required=True)


class PersonalDataSchema(Schema):
    lead_id = fields.Integer(required=True)
    id_number = fields.String(allow_none=True)
    phone = fields.String(allow_none=True)


# --- Views ----------------------------------------------------------------------------------

#: One instance for every request (webargs would otherwise build the schema each time).
_QUEUE_ARGS = QueueArgsSchema()


@blp.route("/leads")
@read_only
@requires(*READERS)
@blp.arguments(_QUEUE_ARGS, location="query")
@blp.response(200, QueuePageSchema)
def list_leads(args: dict[str, Any]) -> Any:
    """The queue: most urgent first, then oldest first, one page at a time (keyset cursor).

    Center staff and leaders see every lead; town staff their town's; helpers their village's;
    department staff the leads that carry evidence from their department.
    """
    page = queue.list_queue(
        connection(),
        actor=current_actor(),
        filters=queue.QueueFilter(
            status=LeadStatus(args["status"]) if "status" in args else None,
            channel=Channel(args["channel"]) if "channel" in args else None,
            feed=args.get("feed"),
            town_code=args.get("town"),
            village_code=args.get("village"),
            category=args.get("category"),
            min_priority=args.get("min_priority"),
            created_from=args.get("created_from"),
            created_to=args.get("created_to"),
            name=args.get("name"),
            handler_id=_handler_filter(args.get("handler")),
            unassigned=args.get("unassigned") or None,
        ),
        cursor=args.get("cursor"),
        limit=args["limit"],
    )
    # The page's rows are tuples from the service; skip a schema dump (the hot path).
    families = household_members.queue_households(
        connection(), [i.id for i in page.items], actor=current_actor()
    )
    items = ",".join(_item_json(i, families.get(i.id)) for i in page.items)
    cursor = _string(page.next_cursor) if page.next_cursor is not None else "null"
    return Response(f'{{"items":[{items}],"next_cursor":{cursor}}}', mimetype="application/json")


def _handler_filter(value: str | None) -> int | None:
    if value is None:
        return None
    return current_actor().user_id if value == "me" else int(value)


def _item_json(i: queue.QueueItem, family: tuple[int, list[int]] | None = None) -> str:
    """One queue item written field by field (QueueItemSchema documents the same shape, and
    tests/test_api_contract.py checks the answers against it): a generic dump costs more than
    the database query. The JSON columns are already JSON text and go out as they are."""
    return (
        f'{{"id":{i.id},"name":{_string(i.name)},"status":{_string(i.status)},'
        f'"channel":{_string(i.channel)},"priority":{i.priority},'
        f'"priority_reasons":{i.priority_reasons_json or "[]"},'
        f'"categories":{i.categories_json or "[]"},'
        f'"town_id":{_int_or_null(i.town_id)},"village_id":{_int_or_null(i.village_id)},'
        f'"has_id_number":{"true" if i.has_id_number else "false"},'
        f'"created_at":"{i.created_at.isoformat()}",'
        f'"handler_id":{_int_or_null(i.handler_id)},'
        f'"household":{_household_json(family)}}}'
    )


def _household_json(family: tuple[int, list[int]] | None) -> str:
    if family is None:
        return "null"
    household_id, others = family
    return f'{{"id":{int(household_id)},"other_open_leads":[{",".join(map(str, others))}]}}'


def _int_or_null(value: int | None) -> str:
    return "null" if value is None else str(int(value))


@blp.route("/leads", methods=["POST"])
@requires(*HANDLERS)
@blp.arguments(ReportCreateSchema)
@blp.response(201, ReportResultSchema)
@blp.doc(parameters=[IDEMPOTENCY_HEADER])
def report_lead(body: dict[str, Any]) -> Any:
    """Register a report from the hotline, 110, 12349, a volunteer, an organisation, an
    enterprise or online. With an ID number it joins that person's open lead; without one the
    answer lists candidate leads (score and reasons) to merge or keep apart. A retry with the
    same Idempotency-Key registers nothing new."""
    reporter = body.get("reporter") or {}
    pii = runtime().pii
    outcome = intake.register_report(
        db(),
        intake.Report(
            channel=Channel(body["channel"]),
            name=body["name"],
            summary=body["summary"],
            id_number=body.get("id_number"),
            phone=body.get("phone"),
            town_code=body.get("town"),
            village_code=body.get("village"),
            address=body.get("address"),
            categories=tuple(dict.fromkeys(body["categories"])),
            event_date=body.get("event_date"),
            urgent=body["urgent"],
            reporter_name=reporter.get("name"),
            reporter_org=reporter.get("organisation"),
            reporter_phone=reporter.get("phone"),
        ),
        pii=pii,
        actor=current_actor(),
        now=now(),
        idempotency_key=idempotency_key(),
    )
    return {
        "lead": _lead_answer(outcome.lead),
        "lead_created": outcome.lead_created,
        "candidates": outcome.candidates,
    }


@blp.route("/leads/<int:lead_id>")
@requires(*READERS)
@blp.response(200, LeadSchema)
def get_lead(lead_id: int) -> Any:
    """One lead with its evidence timeline and its person's household (with the household's
    other open leads); ID and phone numbers masked."""
    lead = access.access_lead_by_id(db(), lead_id, actor=current_actor())
    view = _lead_answer(lead)
    view["household"] = household_members.lead_household(db(), lead, actor=current_actor())
    return view


@blp.route("/leads/<int:lead_id>/personal-data", methods=["POST"])
@requires(Role.CENTER_STAFF)
@blp.response(200, PersonalDataSchema)
def reveal_personal_data(lead_id: int) -> Any:
    """The whole ID and phone numbers (center staff only); each request is written to the audit
    log with who asked and when."""
    return detail.reveal_personal_data(
        db(), lead_id, pii=runtime().pii, actor=current_actor(), now=now()
    )


@blp.route("/leads/<int:lead_id>/candidates")
@requires(*HANDLERS)
@blp.response(200, CandidateListSchema)
def lead_candidates(lead_id: int) -> Any:
    """Open leads that may be the same person, with a score (0–100) and the reasons."""
    actor = current_actor()
    lead = access.access_lead_by_id(db(), lead_id, actor=actor)
    return {"candidates": merging.find_candidates(db(), lead, actor=actor)}


@blp.route("/leads/<int:lead_id>/merge", methods=["POST"])
@requires(*HANDLERS)
@blp.arguments(MergeSchema)
@blp.response(200, LeadSchema)
def merge_lead(body: dict[str, Any], lead_id: int) -> Any:
    """Fold this lead (a report without an ID number) into `into_lead_id`; answers with the lead
    that now holds the evidence. Undo with `/unmerge`."""
    target = merging.merge_leads(
        db(), lead_id, into_id=body["into_lead_id"], actor=current_actor(), now=now()
    )
    return _lead_answer(target)


@blp.route("/leads/<int:lead_id>/unmerge", methods=["POST"])
@requires(*HANDLERS)
@blp.response(200, LeadSchema)
def unmerge_lead(lead_id: int) -> Any:
    """Undo the merge of this lead: it reopens with its evidence, the other lead loses exactly
    what the merge gave it."""
    source = merging.unmerge_lead(db(), lead_id, actor=current_actor(), now=now())
    return _lead_answer(source)


@blp.route("/leads/<int:lead_id>/keep-apart", methods=["POST"])
@requires(*HANDLERS)
@blp.arguments(KeepApartSchema)
@blp.response(200, DismissalSchema)
def keep_apart(body: dict[str, Any], lead_id: int) -> Any:
    """These two leads are different people: stop offering them as candidates of each other."""
    return merging.keep_apart(
        db(),
        lead_id,
        other_id=body["other_lead_id"],
        reason=body.get("reason"),
        actor=current_actor(),
        now=now(),
    )


class DismissSchema(Schema):
    reason = fields.String(
        required=True,
        validate=validate.OneOf([r.value for r in DismissalReason]),
        metadata={
            "description": "out_of_scope 不属于救助范围, already_aided 已享受相应救助, duplicate "
            "重复线索, unreachable 无法联系, other 其他 (`note` required)"
        },
    )
    note = Text(life.TEXT_MAX, multi_line=True, load_default=None, allow_none=True)


class TriageNoteSchema(Schema):
    note = Text(life.TEXT_MAX, multi_line=True, load_default=None, allow_none=True)


class AssignSchema(Schema):
    handler_id = fields.Integer(
        required=True,
        allow_none=True,
        validate=validate.Range(min=1, max=2**53),
        metadata={"description": "a staff member of the center or of the lead's town; null: none"},
    )


class NoteSchema(Schema):
    text = Text(life.NOTE_MAX, multi_line=True, min_len=1, required=True)


class LeadSearchSchema(Schema):
    id_number = Text(40, load_default=None, allow_none=True, metadata={"description": "whole"})
    phone = Text(30, load_default=None, allow_none=True)


class SearchHitSchema(Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True)
    channel = fields.String(required=True)
    priority = fields.Integer(required=True)
    town_id = fields.Integer(allow_none=True)
    village_id = fields.Integer(allow_none=True)
    handler_id = fields.Integer(allow_none=True)
    id_number = fields.String(allow_none=True, metadata={"description": "masked"})
    phone = fields.String(allow_none=True, metadata={"description": "masked"})
    created_at = fields.DateTime(required=True)
    closed_at = fields.DateTime(allow_none=True)


class SearchResultSchema(Schema):
    items = fields.List(fields.Nested(SearchHitSchema), required=True)


def _lead_answer(lead: Any) -> dict[str, Any]:
    return life.full_view(db(), lead, pii=runtime().pii, actor=current_actor())


@blp.route("/leads/<int:lead_id>/dismiss", methods=["POST"])
@requires(*life.TRIAGERS)
@blp.arguments(DismissSchema)
@blp.response(200, LeadSchema)
def dismiss_lead(body: dict[str, Any], lead_id: int) -> Any:
    """排除 a lead at triage, with its reason (`other` needs `note`). Only a lead not yet sent
    anywhere and without undecided applications; it can be reopened for 30 days."""
    lead = life.dismiss_lead(
        db(),
        lead_id,
        reason=DismissalReason(body["reason"]),
        note=body.get("note"),
        actor=current_actor(),
        now=now(),
    )
    return _lead_answer(lead)


@blp.route("/leads/<int:lead_id>/covered", methods=["POST"])
@requires(*life.TRIAGERS)
@blp.arguments(TriageNoteSchema)
@blp.response(200, LeadSchema)
def mark_covered(body: dict[str, Any], lead_id: int) -> Any:
    """已纳入保障: the person already has the aid they need; the lead closes (reopenable for
    30 days)."""
    lead = life.mark_covered(db(), lead_id, note=body.get("note"), actor=current_actor(), now=now())
    return _lead_answer(lead)


@blp.route("/leads/<int:lead_id>/reopen", methods=["POST"])
@requires(*life.TRIAGERS)
@blp.arguments(TriageNoteSchema)
@blp.response(200, LeadSchema)
def reopen_lead(body: dict[str, Any], lead_id: int) -> Any:
    """重新打开 a dismissed or covered lead within 30 days (after: 409 `reopen_window_passed`;
    the person has another open lead: 409 `person_has_open_lead`)."""
    lead = life.reopen_lead(db(), lead_id, note=body.get("note"), actor=current_actor(), now=now())
    return _lead_answer(lead)


@blp.route("/leads/<int:lead_id>/assign", methods=["POST"])
@requires(*life.TRIAGERS)
@blp.arguments(AssignSchema)
@blp.response(200, LeadSchema)
def assign_lead(body: dict[str, Any], lead_id: int) -> Any:
    """指派 / 改派: the lead's handler (center staff, or staff of the lead's town; anyone else
    is 422 `handler_not_eligible`); `null` takes the handler away."""
    lead = life.assign_lead(
        db(), lead_id, handler_id=body["handler_id"], actor=current_actor(), now=now()
    )
    return _lead_answer(lead)


@blp.route("/leads/<int:lead_id>/claim", methods=["POST"])
@requires(*life.TRIAGERS)
@blp.response(200, LeadSchema)
def claim_lead(lead_id: int) -> Any:
    """认领 ("assign to me") a lead nobody handles; one someone else handles is 409
    `lead_has_handler`."""
    lead = life.claim_lead(db(), lead_id, actor=current_actor(), now=now())
    return _lead_answer(lead)


@blp.route("/leads/<int:lead_id>/notes", methods=["POST"])
@requires(*life.NOTE_WRITERS)
@blp.arguments(NoteSchema)
@blp.response(201, LeadEventSchema)
def add_note(body: dict[str, Any], lead_id: int) -> Any:
    """An internal note on the lead: in its timeline for staff, never shown to residents or
    helpers."""
    event = life.add_note(db(), lead_id, text_=body["text"], actor=current_actor(), now=now())
    return life.event_view(db(), event)


@blp.route("/leads/search", methods=["POST"])
@requires(*life.SEARCHERS)
@blp.arguments(LeadSearchSchema)
@blp.response(200, SearchResultSchema)
def search_leads(body: dict[str, Any]) -> Any:
    """Find a person's leads (open and closed, in the caller's scope) by a whole ID number
    (exact, through its keyed hash) or a phone number — in the body, never in a URL. Audited
    as `lead.searched` (never the number)."""
    items = life.search_leads(
        db(),
        life.LeadSearch(id_number=body.get("id_number"), phone=body.get("phone")),
        pii=runtime().pii,
        actor=current_actor(),
        now=now(),
    )
    return {"items": items}
