"""The lead queue's request and answer schemas (`server/api/leads.py` has its views)."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from server.api.paging import page_size
from server.fields import Text
from server.models import Channel, DismissalReason, LeadStatus
from server.services.leads import life
from server.services.leads.core import CATEGORIES
from server.services.leads.intake import REPORT_CHANNELS


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
