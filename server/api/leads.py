"""The lead queue: list and read leads, register reports from other channels, merge duplicates."""

from __future__ import annotations

from json.encoder import encode_basestring as _string
from typing import Any

from flask import Response
from flask_smorest import Blueprint

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
from server.api.lead_schemas import (
    AssignSchema,
    CandidateListSchema,
    DismissalSchema,
    DismissSchema,
    KeepApartSchema,
    LeadEventSchema,
    LeadSchema,
    LeadSearchSchema,
    MergeSchema,
    NoteSchema,
    PersonalDataSchema,
    QueueArgsSchema,
    QueuePageSchema,
    ReportCreateSchema,
    ReportResultSchema,
    SearchResultSchema,
    TriageNoteSchema,
)
from server.models import Channel, DismissalReason, LeadStatus, Role
from server.services.households import members as household_members
from server.services.leads import access, detail, intake, life, merging, queue

blp = Blueprint("leads", __name__, url_prefix="/api/v1", description="The lead queue")

#: Who may read the queue; each sees only their jurisdiction (services/leads/access.scope_leads).
READERS = (
    Role.CENTER_STAFF,
    Role.LEADER,
    Role.TOWN_STAFF,
    Role.DEPARTMENT_STAFF,
    Role.HELPER,
)
#: Who registers reports and merges or separates leads.
HANDLERS = (Role.CENTER_STAFF, Role.TOWN_STAFF)


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
    items = ",".join(_item_json(i) for i in page.items)
    cursor = _string(page.next_cursor) if page.next_cursor is not None else "null"
    return Response(f'{{"items":[{items}],"next_cursor":{cursor}}}', mimetype="application/json")


def _handler_filter(value: str | None) -> int | None:
    if value is None:
        return None
    return current_actor().user_id if value == "me" else int(value)


def _item_json(i: queue.QueueItem) -> str:
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
        f'"household":{_household_json(i.household)}}}'
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
    view["household"] = household_members.lead_household(
        db(), lead, actor=current_actor(), pii=runtime().pii
    )
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
