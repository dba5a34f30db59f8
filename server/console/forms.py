"""Form and query-string parsing for console pages (marshmallow, as the API's schemas).

HTML forms send every field, empty ones as "": those count as not given. Errors come back as
`ValidationFailed` with per-field Chinese messages, which the page shows beside the form.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate, validates_schema
from werkzeug.datastructures import MultiDict

from server.errors import ValidationFailed
from server.fields import Text
from server.models import (
    Channel,
    DismissalReason,
    DispatchState,
    InformMethod,
    LeadStatus,
    Role,
    UnitKind,
)
from server.services.accounts.staff import ACCOUNT_ROLES
from server.services.kernel.audit import AuditFilter
from server.services.kernel.outcomes import OUTCOMES
from server.services.leads.core import CATEGORIES
from server.services.leads.queue import QueueFilter


def parse(schema: Schema, data: MultiDict, *, lists: tuple[str, ...] = ()) -> dict[str, Any]:
    """`data` through `schema`, empty fields dropped; 422 with per-field messages."""
    raw: dict[str, Any] = {}
    for key in data:
        if key in lists:
            values = [v for v in data.getlist(key) if v != ""]
            if values:
                raw[key] = values
        elif (value := data.get(key, "")) != "":
            raw[key] = value
    try:
        return schema.load(raw)
    except ValidationError as exc:
        messages = exc.normalized_messages()
        raise ValidationFailed(errors=messages) from exc  # type: ignore[arg-type]


class QueueArgs(Schema):
    """Every filter of `GET /api/v1/leads`, with the same names and limits."""

    class Meta:
        unknown = EXCLUDE

    status = fields.String(validate=validate.OneOf([s.value for s in LeadStatus]))
    channel = fields.String(validate=validate.OneOf([c.value for c in Channel]))
    feed = Text(40)
    town = Text(32)
    village = Text(32)
    category = fields.String(validate=validate.OneOf(list(CATEGORIES)))
    min_priority = fields.Integer(validate=validate.Range(min=-1000, max=1_000_000))
    created_from = fields.Date()
    created_to = fields.Date()
    name = Text(50, min_len=1)
    #: "me" (the caller) or "none" (nobody handles it yet): the API's handler / unassigned.
    handler = fields.String(validate=validate.OneOf(["me", "none"]))
    cursor = Text(200)


QUEUE_ARGS = QueueArgs()


def queue_filter(args: dict[str, Any], *, me: int | None = None) -> QueueFilter:
    handler = args.get("handler")
    return QueueFilter(
        handler_id=me if handler == "me" else None,
        unassigned=True if handler == "none" else None,
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
    )


class UnitField(fields.String):
    """A unit picker's value, `town:chengdong` or `department:civil_affairs`."""

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        kind, _, code = text.partition(":")
        if kind not in {k.value for k in UnitKind} or not code or len(code) > 32:
            raise ValidationError("请选择接收单位")
        return UnitKind(kind), code


class DispatchForm(Schema):
    class Meta:
        unknown = EXCLUDE

    unit = UnitField(required=True, error_messages={"required": "请选择接收单位"})
    instructions = Text(
        1000,
        multi_line=True,
        min_len=1,
        required=True,
        error_messages={"required": "请填写转办要求"},
    )
    idempotency_key = Text(80, load_default=None)


class BulkForm(Schema):
    class Meta:
        unknown = EXCLUDE

    action = fields.String(required=True, validate=validate.OneOf(["dispatch", "claim", "dismiss"]))
    lead_ids = fields.List(
        fields.Integer(validate=validate.Range(min=1, max=2**53)),
        required=True,
        validate=validate.Length(min=1, max=100),
        error_messages={"required": "请先勾选线索"},
    )
    unit = UnitField(load_default=None)
    instructions = Text(1000, multi_line=True, load_default="")
    reason = fields.String(
        load_default=None, validate=validate.OneOf([r.value for r in DismissalReason])
    )
    note = Text(500, load_default=None)


class KeepApartForm(Schema):
    class Meta:
        unknown = EXCLUDE

    other_lead_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**53))
    reason = Text(200, multi_line=True, load_default=None)


class MergeForm(Schema):
    class Meta:
        unknown = EXCLUDE

    into_lead_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**53))


class DispatchListArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    state = fields.String(validate=validate.OneOf([s.value for s in DispatchState]))
    deadline = fields.String(validate=validate.OneOf(["on_time", "due_soon", "overdue"]))
    lead_id = fields.Integer(validate=validate.Range(min=1, max=2**53))
    unit_kind = fields.String(validate=validate.OneOf([k.value for k in UnitKind]))
    unit_code = Text(32)
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))


class ReturnForm(Schema):
    class Meta:
        unknown = EXCLUDE

    reason = Text(
        500,
        multi_line=True,
        min_len=1,
        required=True,
        error_messages={"required": "请填写退回原因"},
    )


class AnswerForm(Schema):
    """One application's decision in a slip's feedback (or the slip's one outcome)."""

    class Meta:
        unknown = EXCLUDE

    outcome = fields.String(
        required=True,
        validate=validate.OneOf(list(OUTCOMES)),
        error_messages={"required": "请选择办理结果"},
    )
    reason = Text(500, multi_line=True, load_default=None)
    amount = fields.Decimal(
        load_default=None,
        places=2,
        validate=validate.Range(min=Decimal(0), max=Decimal(100_000_000)),
    )


class FeedbackForm(AnswerForm):
    """The feedback: findings, and one outcome only when the lead has no undecided
    application (the service says so when it is missing)."""

    findings = Text(
        2000,
        multi_line=True,
        min_len=1,
        required=True,
        error_messages={"required": "请填写调查核实情况"},
    )
    outcome = fields.String(load_default=None, validate=validate.OneOf(list(OUTCOMES)))


class ApplicationListArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    status = fields.String(
        validate=validate.OneOf(["submitted", "accepted", "investigating", "decided", "withdrawn"])
    )
    type = fields.String(validate=validate.OneOf(["dibao", "tekun", "temporary", "medical"]))
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))


class MonthArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    month = fields.String(
        validate=validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="月份格式应为 YYYY-MM")
    )


class InformTaskListArgs(Schema):
    class Meta:
        unknown = EXCLUDE

    state = fields.String(
        load_default="open", validate=validate.OneOf(["open", "overdue", "done", "all"])
    )
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))


class InformedForm(Schema):
    """How and when the person was told; the time as the browser's `datetime-local` sends it
    (no offset: read in Asia/Shanghai by the view)."""

    class Meta:
        unknown = EXCLUDE

    method = fields.String(
        required=True,
        validate=validate.OneOf([m.value for m in InformMethod]),
        error_messages={"required": "请选择告知方式"},
    )
    informed_at = fields.NaiveDateTime(
        required=True,
        format="%Y-%m-%dT%H:%M",
        error_messages={"required": "请填写告知时间", "invalid": "告知时间格式不正确"},
    )
    note = Text(500, multi_line=True, load_default=None)


class PapersForm(Schema):
    class Meta:
        unknown = EXCLUDE

    what = Text(
        500,
        multi_line=True,
        min_len=1,
        required=True,
        error_messages={"required": "请说明需要补充的材料"},
    )


class DismissForm(Schema):
    class Meta:
        unknown = EXCLUDE

    reason = fields.String(
        required=True,
        validate=validate.OneOf([r.value for r in DismissalReason]),
        error_messages={"required": "请选择排除原因"},
    )
    note = Text(500, load_default=None)


class TriageNoteForm(Schema):
    """已纳入保障 / 重新打开: an optional word on why."""

    class Meta:
        unknown = EXCLUDE

    note = Text(500, load_default=None)


class AssignForm(Schema):
    class Meta:
        unknown = EXCLUDE

    #: Empty: take the handler away.
    handler_id = fields.Integer(load_default=None, validate=validate.Range(min=1, max=2**53))


class NoteForm(Schema):
    class Meta:
        unknown = EXCLUDE

    text = Text(
        1000,
        multi_line=True,
        min_len=1,
        required=True,
        error_messages={"required": "请填写备注内容"},
    )


class SearchForm(Schema):
    """A whole ID number or a phone number (the service says when both or neither are given)."""

    class Meta:
        unknown = EXCLUDE

    id_number = Text(18, load_default=None)
    phone = Text(20, load_default=None)


class HouseholdListArgs(Schema):
    """The households page: a name to find, or the grants whose review date has passed."""

    class Meta:
        unknown = EXCLUDE

    name = Text(50)
    review_due = fields.Boolean()
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))


class ReportArgs(MonthArgs):
    """统计: the month (default this month) and, for the center and leaders, one town."""

    town = Text(32)


class SummaryForm(Schema):
    class Meta:
        unknown = EXCLUDE

    remarks = Text(
        2000,
        min_len=1,
        multi_line=True,
        required=True,
        error_messages={"required": "请填写本月小结"},
    )


class AuditArgs(Schema):
    """审计: the filters of `GET /api/v1/audit`, and the actor by login name."""

    class Meta:
        unknown = EXCLUDE

    actor = Text(64)
    actor_role = fields.String(validate=validate.OneOf([r.value for r in Role]))
    action = Text(60)
    target_type = Text(40)
    target_id = fields.Integer(validate=validate.Range(min=-(2**62), max=2**62))
    start = fields.Date(
        data_key="from", validate=validate.Range(min=date(2000, 1, 1), max=date(2100, 12, 31))
    )
    end = fields.Date(
        data_key="to", validate=validate.Range(min=date(2000, 1, 1), max=date(2100, 12, 31))
    )
    ip = Text(64)
    unmasked = fields.Boolean(load_default=False)
    before = fields.Integer(validate=validate.Range(min=1, max=2**62))

    @validates_schema
    def _range(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise ValidationError("开始日期不能晚于结束日期", field_name="from")


def audit_filter(args: dict[str, Any]) -> AuditFilter:
    return AuditFilter(
        actor_username=args.get("actor"),
        actor_role=Role(args["actor_role"]) if "actor_role" in args else None,
        action=args.get("action"),
        target_type=args.get("target_type"),
        target_id=args.get("target_id"),
        start=args.get("start"),
        end=args.get("end"),
        ip=args.get("ip"),
        unmasked=args["unmasked"],
    )


_STAFF_ROLE = fields.String(
    required=True,
    validate=validate.OneOf([r.value for r in ACCOUNT_ROLES]),
    error_messages={"required": "请选择角色"},
)


class StaffChangeForm(Schema):
    """A staff account's role and jurisdiction (a town for town staff, a department for
    department staff)."""

    class Meta:
        unknown = EXCLUDE

    role = _STAFF_ROLE
    town = Text(32)
    department = Text(32)


class StaffCreateForm(StaffChangeForm):
    username = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[A-Za-z0-9_.-]{3,64}$", error="用户名为 3 到 64 位字母、数字或 _ . -"
        ),
        error_messages={"required": "请填写用户名"},
    )
    display_name = Text(50)


class LockForm(Schema):
    class Meta:
        unknown = EXCLUDE

    username = Text(64, min_len=1, required=True, error_messages={"required": "请填写账号"})
    days = fields.Integer(load_default=30, validate=validate.Range(min=1, max=365))
    reason = Text(200)


_PAGE = fields.Integer(load_default=1, validate=validate.Range(min=1, max=10_000))
_DAY = validate.Range(min=date(2000, 1, 1), max=date(2100, 12, 31))
_HARDSHIPS = ("none", "general", "severe", "urgent")


class VisitListArgs(Schema):
    """走访记录: a village and the visit dates between two days."""

    class Meta:
        unknown = EXCLUDE

    village = Text(32)
    start = fields.Date(data_key="from", validate=_DAY)
    end = fields.Date(data_key="to", validate=_DAY)
    hardship = fields.String(validate=validate.OneOf(_HARDSHIPS))
    page = _PAGE

    @validates_schema
    def _range(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise ValidationError("开始日期不能晚于结束日期", field_name="from")


class LedgerArgs(Schema):
    """分类台帐: the filters of `GET /api/v1/ledgers`."""

    class Meta:
        unknown = EXCLUDE

    town = Text(32)
    village = Text(32)
    category = fields.String(validate=validate.OneOf(list(CATEGORIES)))
    hardship = fields.String(validate=validate.OneOf(_HARDSHIPS))
    overdue = fields.Boolean(load_default=False)
    name = Text(50)
    page = _PAGE


class DueArgs(Schema):
    """待走访: households whose next visit falls within `days` (overdue ones first)."""

    class Meta:
        unknown = EXCLUDE

    village = Text(32)
    days = fields.Integer(load_default=14, validate=validate.Range(min=0, max=366))
    page = _PAGE


class PolicyForm(Schema):
    """One kind of aid's public text; eligibility and documents one per line."""

    class Meta:
        unknown = EXCLUDE

    title = Text(50, min_len=1, required=True, error_messages={"required": "请填写名称"})
    summary = Text(
        500, min_len=1, multi_line=True, required=True, error_messages={"required": "请填写简介"}
    )
    eligibility = fields.String(load_default="")
    documents = fields.String(load_default="")
    duration = Text(200, min_len=1, required=True, error_messages={"required": "请填写办理时限"})
    how_to_apply = Text(
        500,
        min_len=1,
        multi_line=True,
        required=True,
        error_messages={"required": "请填写申请方式"},
    )
    sort_order = fields.Integer(validate=validate.Range(min=0, max=10_000))


class NewPolicyForm(PolicyForm):
    code = fields.String(
        required=True,
        validate=validate.Regexp(
            r"^[a-z0-9_]{1,32}$", error="编码只能由小写字母、数字和下划线组成"
        ),
        error_messages={"required": "请填写编码"},
    )


class ContactForm(Schema):
    class Meta:
        unknown = EXCLUDE

    name = Text(50, min_len=1, required=True, error_messages={"required": "请填写名称"})
    phone = fields.String(
        required=True,
        validate=validate.Length(min=3, max=30),
        error_messages={"required": "请填写电话"},
    )
    note = Text(200)
    address = Text(200)
