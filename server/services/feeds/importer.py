"""Importing a department file: validate rows, compare them with the roster and the open leads,
and add leads and evidence — in chunks, set-based.

Per chunk of rows the database sees a fixed number of statements whatever the chunk's size:
one IN-list lookup of the roster, one of the open leads (locked on PostgreSQL), one of closed
leads, one bulk insert each for leads, evidence, ledger and rejected rows (see bulk.py), and one
bulk update of the leads that gained evidence. Never one query per row. Idempotent by
construction: evidence carries a content key per person, so the same file twice, or overlapping
rows in a later file, add nothing; a once-per-period rule writes a ledger row per person and
period and raises nobody twice.

Per row, only what the row needs: every row is validated (a rejected row must say why, whatever
its amount); rows below the feed's threshold are then only counted; the rest get their keyed
hash, their signal (reason, facts, dedup key), and — for people without an open lead — a sealed
ID number and the name's keys. Cells that repeat down a column (dates, hospitals) are converted
once per distinct value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from itertools import islice
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from server.models import (
    Channel,
    Department,
    FeedBatch,
    FeedRejectedRow,
    LeadEvidence,
    RosterEntry,
    RosterProgramme,
    Town,
    User,
    Village,
)
from server.services import signal_rule
from server.services.feeds import normalise as norm
from server.services.feeds.bulk import Bulk, dump_json
from server.services.feeds.namekeys import NameKeys, shape_key
from server.services.feeds.reader import Table
from server.services.feeds.registry import Feed, Kind, OnRoster
from server.services.kernel.access import SYSTEM, Actor
from server.services.kernel.audit import record_event
from server.services.kernel.pii import PersonalData
from server.services.leads import CATEGORIES, Signal, find_candidates, record_signal

#: Rows per chunk: per chunk the database sees a fixed number of statements and the worker
#: commits once, so progress shows; a chunk's rows and what they become stay in memory.
CHUNK_ROWS = 10_000
#: Rejected rows kept per batch (the rest are counted): errors.xlsx gives these back.
MAX_REJECTED_KEPT = 10_000
#: Distinct cells remembered per column (dates, short texts): a month's file has a few dozen
#: dates and hospitals, so most cells are converted once; the memo is emptied when full.
MEMO_MAX = 20_000

PROGRAMME_LABELS = {
    RosterProgramme.DIBAO: "低保",
    RosterProgramme.TEKUN: "特困",
    RosterProgramme.ORPHAN: "孤困儿童",
    RosterProgramme.TEMPORARY: "临时救助",
}
_PROGRAMME_WORDS = (
    ("特困", RosterProgramme.TEKUN),
    ("五保", RosterProgramme.TEKUN),  # 农村五保户: 特困人员 since 2014's 社会救助暂行办法
    ("供养", RosterProgramme.TEKUN),
    ("孤", RosterProgramme.ORPHAN),
    ("困境儿童", RosterProgramme.ORPHAN),
    ("临时", RosterProgramme.TEMPORARY),
    ("低保", RosterProgramme.DIBAO),
    ("最低生活保障", RosterProgramme.DIBAO),
)

COUNTERS = (
    "read",
    "accepted",
    "rejected",
    "below_threshold",
    "leads_created",
    "leads_updated",
    "already_covered",
    "duplicates",
    "roster_added",
    "roster_updated",
    #: Rows accepted without an ID number (feeds where it is optional), and of them those
    #: whose new lead has candidates (the same person, perhaps) for staff to merge.
    "without_id",
    "with_candidates",
    #: 合计 / 小计 / 总计 rows: skipped, not errors.
    "totals_skipped",
)
#: Words that make a row a total (in the name or the first column), not a person.
TOTAL_WORDS = ("合计", "小计", "总计")


@dataclass(slots=True)
class Accepted:
    """A valid row, normalised, that matters (at or above the feed's threshold): what the
    comparison works on."""

    number: int
    #: Keyed hash and ID number; None for a row without one (feeds where it is optional).
    person_hash: str | None
    id_number: str | None
    name: str
    values: dict[str, Any]
    event_date: date | None
    town_id: int | None
    village_id: int | None
    #: What the row says whoever the person is (`Importer._prepare`): the priority reason,
    #: the facts as JSON, the evidence's dedup key.
    reason: str = ""
    facts: str = ""
    dedup_key: str = ""
    #: What a new lead for this person needs (`Importer._material`): the sealed ID number,
    #: the name's shape key and pinyin key. Worked out ahead on PostgreSQL (see `run`).
    material: tuple[str, str | None, str | None] | None = None
    #: How to reach a person the row gives no ID number for (never in the evidence's facts).
    phone: str | None = None
    address: str | None = None


@dataclass
class Rejected:
    number: int
    column: str
    code: str
    message: str
    cells: list[str]


@dataclass
class Progress:
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTERS, 0))
    earliest_event: date | None = None
    rejected_kept: int = 0


@dataclass
class _Checked:
    """One chunk after validation, ready for the database stage. `accepted` holds only the
    rows at or above the threshold; those below are only counted."""

    read: int
    accepted: list[Accepted] = field(default_factory=list)
    #: Rows without an ID number (a name and a phone or an address): one lead each.
    without_id: list[Accepted] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    totals: int = 0
    earliest: date | None = None
    valid: int = 0
    below_threshold: int = 0


@dataclass(frozen=True, slots=True)
class _Bad:
    """A cell's refusal, remembered in a column memo like a converted value."""

    code: str
    message: str


_MISSING = object()
_MEMO_KINDS = frozenset({Kind.DATE, Kind.TEXT, Kind.YEAR, Kind.GRADE})


@dataclass(slots=True)
class _Signal:
    row: Accepted
    dedup_key: str
    summary: str
    reason: str
    categories: list[str]
    facts: str  # JSON


class Importer:
    """Imports one batch's rows. Build it, then call `run(table)`; it only flushes.

    `checkpoint` runs after each chunk: the worker and the CLI commit there so progress is seen
    and memory stays bounded; an inline (small) import just flushes.
    """

    def __init__(
        self,
        db: Session,
        *,
        batch: FeedBatch,
        feed: Feed,
        pii: PersonalData,
        now: datetime,
        checkpoint: Callable[[FeedBatch], None] | None = None,
        chunk_rows: int | None = None,
        resume_after: int = 0,
    ) -> None:
        self.db = db
        #: Data rows a previous attempt imported and committed (its worker died): skipped,
        #: with that attempt's counts carried on.
        self.resume_after = resume_after
        self.batch = batch
        self.feed = feed
        self.pii = pii
        self.now = now
        self.today = now.date()
        self.checkpoint = checkpoint
        self.chunk_rows = chunk_rows or CHUNK_ROWS
        self.progress = Progress()
        self.dialect = db.get_bind().dialect.name
        self._towns, self._villages = _area_maps(db)
        self._validators = _validators(feed, today=self.today)
        self.bulk = Bulk(db)
        self._name_key = NameKeys()
        #: The evidence rows name the department whose file this is.
        self.department_id: int | None = db.scalar(
            select(Department.id).where(Department.code == feed.department)
        )
        uploader = db.get(User, batch.uploaded_by) if batch.uploaded_by else None
        self._uploader_role = uploader.role.value if uploader is not None else "system"
        #: Who the per-row path (rows without an ID number) acts as: the uploader.
        self._actor = (
            Actor(user_id=uploader.id, role=uploader.role, department_id=uploader.department_id)
            if uploader is not None
            else SYSTEM
        )
        self._categories_on = [c for c in feed.categories if c in CATEGORIES]
        self._categories_off = [
            c for c in (*feed.categories, *feed.categories_off_roster) if c in CATEGORIES
        ]

    # --- driving ------------------------------------------------------------------------------

    def run(self, table: Table) -> dict[str, Any]:
        """Import every data row of `table`.

        On PostgreSQL a two-stage pipeline: this thread reads and validates chunk N+1 (pure
        Python, no database) while one helper thread does chunk N's database work, which mostly
        waits on the server. The session is only ever used by one thread at a time: the stages
        hand over at `pending.result()`. On SQLite the stages run one after the other: the
        engine works inside this process and the sqlite3 module takes the GIL back after every
        row it steps, so a second thread gains nothing (measured: slightly slower).
        """
        self.batch.header_row = table.header_row
        self.batch.header = table.header
        self.batch.rows_total = table.rows_total
        plan = self._plan(table)
        rows = table.data_rows()
        if self.resume_after:
            self._restore_progress()
            rows = islice(rows, self.resume_after, None)
        pool: ThreadPoolExecutor | None = None
        pending: Future[None] | None = None
        try:
            for chunk in _chunks(rows, self.chunk_rows):
                checked = self._validate(chunk, plan)
                del chunk
                if not self.bulk.pg or (
                    pending is None and pool is None and checked.read < self.chunk_rows
                ):
                    self._store(checked)  # SQLite, or a small file: one chunk, no thread
                    continue
                if pool is None:
                    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feed-import")
                if pending is not None:
                    pending.result()
                pending = pool.submit(self._store, checked)
            if pending is not None:
                pending.result()
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self.batch.rows_total = self.progress.counts["read"]
        self.batch.rows_done = self.progress.counts["read"]
        return self.result()

    def _restore_progress(self) -> None:
        """The counts the previous attempt committed with its last chunk."""
        saved = self.batch.result or {}
        self.progress.counts = {k: int(saved.get(k, 0)) for k in COUNTERS}
        earliest = saved.get("earliest_event")
        self.progress.earliest_event = date.fromisoformat(earliest) if earliest else None
        self.progress.rejected_kept = (
            self.db.scalar(
                select(func.count())
                .select_from(FeedRejectedRow)
                .where(FeedRejectedRow.batch_id == self.batch.id)
            )
            or 0
        )

    def result(self) -> dict[str, Any]:
        earliest = self.progress.earliest_event
        return {
            **self.progress.counts,
            "earliest_event": earliest.isoformat() if earliest else None,
        }

    def _store(self, checked: _Checked) -> None:
        """The database stage of one chunk; ends with the caller's checkpoint (commit)."""
        counts = self.progress.counts
        self.bulk.begin_chunk(
            self.batch.id, counts["read"], async_commit=self.checkpoint is not None
        )
        counts["read"] += checked.read
        counts["accepted"] += checked.valid
        counts["rejected"] += len(checked.rejected)
        counts["below_threshold"] += checked.below_threshold
        counts["totals_skipped"] += checked.totals
        earliest = self.progress.earliest_event
        if checked.earliest is not None and (earliest is None or checked.earliest < earliest):
            self.progress.earliest_event = checked.earliest
        self._keep_rejected(checked.rejected)
        if self.feed.on_roster is OnRoster.ROSTER:
            self._update_roster(checked.accepted)
        else:
            self._compare(checked.accepted)
            self._without_id(checked.without_id)
        self.batch.rows_done = counts["read"]
        self.batch.result = self.result()
        self.db.flush()
        if self.checkpoint is not None:
            self.checkpoint(self.batch)

    # --- validation ---------------------------------------------------------------------------

    def _plan(self, table: Table) -> list[tuple[Any, ...]]:
        """(field, converter, required, cell index, header label, memo) for each field."""
        return [
            (
                name,
                convert,
                required,
                table.columns.get(name),
                table.header[table.columns[name]] if name in table.columns else name,
                {} if memo else None,
            )
            for name, (convert, required, memo) in self._validators.items()
        ]

    def _validate(
        self, chunk: list[tuple[int, list[Any]]], plan: list[tuple[Any, ...]]
    ) -> _Checked:
        """Normalise and check each row (no database). Rows below the feed's threshold are
        counted and dropped here; the rows kept carry the keyed hash of their ID number."""
        checked = _Checked(read=len(chunk))
        accepted, rejected = checked.accepted, checked.rejected
        hash_ = self.pii.hash
        date_field = self.feed.date_field
        limit_field, limit = self.feed.threshold_field, self.feed.threshold
        if limit is None:
            limit_field = None
        area = self._area
        earliest = None
        valid = below = 0
        name_index = next((p[3] for p in plan if p[0] == "name"), None)
        for number, cells in chunk:
            if _is_total(cells, name_index):
                checked.totals += 1
                continue
            values: dict[str, Any] = {}
            width = len(cells)
            for name, convert, required, index, label, memo in plan:
                raw = cells[index] if index is not None and index < width else None
                kind = raw.__class__
                if raw is None or (kind is str and (not raw or raw.isspace())):
                    if required:
                        rejected.append(
                            Rejected(number, label, "required", f"{label}为空", _cells(cells))
                        )
                        break
                    values[name] = None
                    continue
                if memo is not None:
                    key = raw if kind is str else (kind, raw)
                    value = memo.get(key, _MISSING)
                    if value is _MISSING:
                        try:
                            value = convert(raw)
                        except norm.CellError as exc:
                            value = _Bad(exc.code, exc.message)
                        if len(memo) >= MEMO_MAX:
                            memo.clear()
                        memo[key] = value
                    if value.__class__ is _Bad:
                        rejected.append(
                            Rejected(number, label, value.code, value.message, _cells(cells))
                        )
                        break
                    values[name] = value
                    continue
                try:
                    values[name] = convert(raw)
                except norm.CellError as exc:
                    rejected.append(Rejected(number, label, exc.code, exc.message, _cells(cells)))
                    break
            else:
                id_number = values.pop("id_number")
                phone, address = values.pop("phone", None), values.pop("address", None)
                if id_number is None and not (phone or address):
                    message = "无身份证号时，请填写联系电话或住址"
                    label = self.feed.column("id_number").label
                    rejected.append(
                        Rejected(number, label, "contact_required", message, _cells(cells))
                    )
                    continue
                valid += 1
                event = values.get(date_field) if date_field else None
                if event is not None and (earliest is None or event < earliest):
                    earliest = event
                if limit_field is not None and values[limit_field] < limit:
                    below += 1
                    continue
                town, village = values.pop("town", None), values.pop("village", None)
                town_id, village_id = area(town, village) if town or village else (None, None)
                row = Accepted(
                    number,
                    hash_(id_number) if id_number is not None else None,
                    id_number,
                    values.pop("name"),
                    values,
                    event,
                    town_id,
                    village_id,
                )
                if id_number is None:
                    row.phone, row.address = phone, address
                    checked.without_id.append(row)
                else:
                    accepted.append(row)
        checked.earliest = earliest
        checked.valid, checked.below_threshold = valid, below
        if self.feed.on_roster is not OnRoster.ROSTER:
            prepare = self._prepare
            for row in accepted:
                prepare(row)
            for row in checked.without_id:
                prepare(row)
            if self.bulk.pg:
                # Ahead of the database stage, which on PostgreSQL runs alongside this thread
                # and mostly waits on the server: a few of these are for people who turn out
                # to have an open lead already, and are not needed.
                material, seen = self._material, set()
                for row in accepted:
                    if row.person_hash not in seen:
                        seen.add(row.person_hash)
                        row.material = material(row)
        return checked

    def _area(self, town: str | None, village: str | None) -> tuple[int | None, int | None]:
        town_id = self._towns.get(town) if town else None
        village_id = None
        if village:
            found = self._villages.get((town_id, village))
            if found is None and town_id is None:
                found = self._villages.get((None, village))
            if found is not None:
                town_id, village_id = found
        return town_id, village_id

    def _keep_rejected(self, rejected: list[Rejected]) -> None:
        room = MAX_REJECTED_KEPT - self.progress.rejected_kept
        keep = rejected[: max(room, 0)]
        if not keep:
            return
        self.progress.rejected_kept += len(keep)
        seal = self.pii.seal
        self.bulk.insert_rejected(
            [
                (
                    self.batch.id,
                    r.number,
                    r.column[:100],
                    r.code[:40],
                    r.message[:300],
                    seal(json.dumps(r.cells, ensure_ascii=False)),
                )
                for r in keep
            ]
        )

    # --- the roster (civil_affairs_new) -------------------------------------------------------

    def _update_roster(self, rows: list[Accepted]) -> None:
        latest: dict[str, Accepted] = {}
        for row in rows:
            latest[row.person_hash] = row
        existing = dict(
            self.db.execute(
                select(RosterEntry.person_hash, RosterEntry.id).where(
                    RosterEntry.person_hash.in_(list(latest))
                )
            ).all()
        )
        new = [r for h, r in latest.items() if h not in existing]
        if new:
            self.db.execute(
                RosterEntry.__table__.insert(),
                [
                    self._roster_values(r) | {"id_number_enc": self.pii.seal(r.id_number)}
                    for r in new
                ],
            )
        old = [r for h, r in latest.items() if h in existing]
        if old:
            table = RosterEntry.__table__
            self.db.execute(
                update(table)
                .where(table.c.person_hash == bindparam("b_hash"))
                .values(
                    name=bindparam("name"),
                    programme=bindparam("programme"),
                    since=bindparam("since"),
                    town_id=func.coalesce(bindparam("town_id"), table.c.town_id),
                    batch_id=bindparam("batch_id"),
                    updated_at=bindparam("updated_at"),
                ),
                [self._roster_values(r) | {"b_hash": r.person_hash} for r in old],
                execution_options={"synchronize_session": False},
            )
        self.progress.counts["roster_added"] += len(new)
        self.progress.counts["roster_updated"] += len(old)

    def _roster_values(self, row: Accepted) -> dict[str, Any]:
        return {
            "person_hash": row.person_hash,
            "name": row.name,
            "programme": row.values["programme"],
            "since": row.event_date,
            "town_id": row.town_id,
            "batch_id": self.batch.id,
            "updated_at": self.now,
        }

    # --- comparison (数据比对) -----------------------------------------------------------------

    def _compare(self, rows: list[Accepted]) -> None:
        counts = self.progress.counts
        feed = self.feed
        if not rows:  # (rows below the threshold were counted and dropped in `_validate`)
            return
        roster = self.bulk.roster(list({r.person_hash for r in rows}))
        if feed.on_roster is OnRoster.COVERED and roster:
            kept = [r for r in rows if r.person_hash not in roster]
            counts["already_covered"] += len(rows) - len(kept)
            rows = kept
        if feed.period_rule is not None:
            rows = self._once_per_period(rows)
        if not rows:
            return
        self._attach([self._signal(r, roster.get(r.person_hash)) for r in rows])

    def _once_per_period(self, rows: list[Accepted]) -> list[Accepted]:
        """Keep the rows whose person this rule has not raised yet in that period (ledger)."""
        rule = self.feed.period_rule
        assert rule is not None and self.feed.threshold_field is not None
        amount = self.feed.threshold_field
        by_key: dict[tuple[str, str], Accepted] = {}
        for row in rows:
            key = (row.person_hash, self._period(row))
            other = by_key.get(key)
            if other is None or row.values[amount] > other.values[amount]:
                by_key[key] = row
        raised = self.bulk.insert_ledger(rule, list(by_key), self.batch.id, self.now)
        self.progress.counts["already_covered"] += len(rows) - len(raised)
        return [row for key, row in by_key.items() if key in raised]

    def _period(self, row: Accepted) -> str:
        year = row.values.get("year")
        if year is None:
            year = row.event_date.year if row.event_date else self.today.year
        return str(year)

    def _prepare(self, row: Accepted) -> None:
        """The part of a row's signal that does not depend on who the person is."""
        feed = self.feed
        period = self._period(row) if feed.period_rule else None
        row.reason = f"{feed.reason_prefix}: {describe(feed, row.values, period=period)}"[:200]
        row.facts = _facts_json(row.values)
        person = row.person_hash or f"name:{row.name}|{row.phone}|{row.address}"
        if period is not None:
            key_source = f"{person}|{period}"
        else:  # every normalised value, in the feed's column order
            key_source = "|".join([person, *map(str, row.values.values())])
        digest = hashlib.blake2b(key_source.encode(), digest_size=20).hexdigest()
        row.dedup_key = f"feed:{feed.code}:{digest}"

    def _material(self, row: Accepted) -> tuple[str, str | None, str | None]:
        sealed = self.pii.seal(row.id_number)
        assert sealed is not None
        # The pinyin key is filled here rather than by a pass over the new leads afterwards,
        # which would write each of them twice (see batches.fill_name_keys).
        return sealed, shape_key(row.name)[:50] or None, self._name_key(row.name)[:120] or None

    def _signal(self, row: Accepted, programme: str | None) -> _Signal:
        feed = self.feed
        reason = summary = row.reason
        facts = row.facts
        categories = self._categories_on if programme is not None else self._categories_off
        if programme is not None:
            label = PROGRAMME_LABELS.get(RosterProgramme(programme), programme)
            extra = {"on_roster": programme}
            if feed.special_aid:
                extra["suggested_aid"] = feed.special_aid
                summary = f"{reason}（已享{label}，建议{feed.special_aid}）"[:200]
            else:
                summary = f"{reason}（已享{label}）"[:200]
            # = dump_json({**facts, **extra}): the row's fields never use these two names.
            facts = dump_json(extra) if facts == "{}" else f"{facts[:-1]},{dump_json(extra)[1:]}"
        return _Signal(row, row.dedup_key, summary, reason, categories, facts)

    def _attach(self, signals: list[_Signal]) -> None:
        """Land each signal in its person's one open lead, opening leads set-based."""
        bulk, counts = self.bulk, self.progress.counts
        by_person: dict[str, list[_Signal]] = {}
        for s in signals:
            by_person.setdefault(s.row.person_hash, []).append(s)
        open_leads = bulk.open_leads(list(by_person))
        missing = [h for h in by_person if h not in open_leads]
        created = self._open_new_leads({h: by_person[h] for h in missing}) if missing else {}
        if len(created) < len(missing):  # another import opened some of them meanwhile
            open_leads.update(bulk.open_leads([h for h in missing if h not in created]))
        existing_ids = [lead.id for lead in open_leads.values()]
        known: dict[int, set[str]] = {}
        if existing_ids:
            for lead_id, key in bulk.evidence_keys(existing_ids, self.feed.code):
                known.setdefault(lead_id, set()).add(key)
        evidence: list[tuple[Any, ...]] = []
        updates = []
        points = self.feed.priority
        for person_hash, person_signals in by_person.items():
            lead_id = created.get(person_hash)
            lead = None if lead_id is not None else open_leads[person_hash]
            if lead is not None:
                lead_id = lead.id
            assert lead_id is not None
            # The one rule decides what is new and what it raises; this path only stores it.
            # A lead opened just now holds nothing yet (its values came from the same rule).
            state = (
                signal_rule.LeadState(evidence_keys=frozenset())
                if lead is None
                else signal_rule.LeadState(
                    categories=lead.categories,
                    priority=lead.priority,
                    reasons=lead.reasons,
                    evidence_keys=known.get(lead_id, set()),
                )
            )
            change = signal_rule.apply_signals(state, map(self._gain, person_signals))
            fresh_keys = {g.dedup_key for g in change.fresh}
            fresh = []
            for s in person_signals:
                if s.dedup_key not in fresh_keys:
                    continue
                fresh_keys.discard(s.dedup_key)
                fresh.append(s)
                row = s.row
                evidence.append(
                    (
                        lead_id,
                        row.number,
                        s.summary,
                        s.facts,
                        row.event_date,
                        s.dedup_key,
                        s.reason,
                        points,
                    )
                )
            if lead is not None and fresh:
                town, village = _area_of(fresh)
                updates.append(
                    {
                        "id": lead.id,
                        "categories": change.categories,
                        "priority": change.priority,
                        "priority_reasons": change.reasons,
                        "town_id": town,
                        "village_id": village,
                    }
                )
        bulk.insert_evidence(evidence, self.feed.code, self.batch.id, self.department_id, self.now)
        bulk.update_leads(updates, self.now)
        if created:
            self._audit_created(sorted(created.values()))
        counts["leads_created"] += len(created)
        counts["leads_updated"] += len(updates)
        counts["duplicates"] += len(signals) - len(evidence)

    def _without_id(self, rows: list[Accepted]) -> None:
        """Rows without an ID number: each opens its own lead through `record_signal`, as a
        hotline report without one does, and goes through the same candidate matching
        (`find_candidates`): staff see the candidates and merge. Such rows are few (complaint
        and online-help files); a row already imported (its content key on any lead of this
        feed) adds nothing."""
        if not rows:
            return
        counts = self.progress.counts
        counts["without_id"] += len(rows)
        keys = [row.dedup_key for row in rows]
        known = set(
            self.db.scalars(
                select(LeadEvidence.dedup_key).where(
                    LeadEvidence.feed_code == self.feed.code, LeadEvidence.dedup_key.in_(keys)
                )
            )
        )
        for row in rows:
            if row.dedup_key in known:
                counts["duplicates"] += 1
                continue
            known.add(row.dedup_key)
            outcome = record_signal(
                self.db, self._signal_without_id(row), actor=self._actor, now=self.now
            )
            counts["leads_created"] += int(outcome.lead_created)
            if find_candidates(self.db, outcome.lead, actor=SYSTEM, limit=1):
                counts["with_candidates"] += 1

    def _signal_without_id(self, row: Accepted) -> Signal:
        pii = self.pii
        return Signal(
            channel=Channel.FEED,
            name=row.name,
            summary=row.reason,
            dedup_key=row.dedup_key,
            phone_enc=pii.seal(row.phone),
            phone_hash=pii.hash(row.phone) if row.phone else None,
            town_id=row.town_id,
            village_id=row.village_id,
            address=(row.address or None) and row.address[:200],
            categories=list(self._categories_off),
            priority=self.feed.priority,
            priority_reason=row.reason,
            facts=json.loads(row.facts),
            event_date=row.event_date,
            feed_code=self.feed.code,
            batch_id=self.batch.id,
            row_number=row.number,
            department_id=self.department_id,
        )

    def _audit_created(self, lead_ids: list[int]) -> None:
        """The `lead.created` trail of the leads this chunk opened: ONE audit row per chunk
        (≤ CHUNK_ROWS rows, the unit the worker commits), listing the lead ids, rather than
        one per lead. A 100,000-row file opens ~75,000 leads; a chained audit row each (an
        HMAC, an ORM insert and the chain head's lock at commit) would make the audit the
        largest cost of the import, while one row per chunk still names every lead, commits
        in the same transaction as the leads it names (a failed chunk leaves neither), and is
        found by `action=lead.created` and the batch id."""
        record_event(
            self.db,
            actor_id=self.batch.uploaded_by,
            actor_role=self._uploader_role,
            action="lead.created",
            target_type="feed_batch",
            target_id=self.batch.id,
            now=self.now,
            detail={"channel": "feed", "feed": self.feed.code, "leads": lead_ids},
            ip=None,
        )

    def _gain(self, s: _Signal) -> signal_rule.Gain:
        """A row's signal in the terms of the one rule: the feed's weight for its reason."""
        return signal_rule.Gain(s.dedup_key, s.categories, self.feed.priority, s.reason)

    def _open_new_leads(self, people: dict[str, list[_Signal]]) -> dict[str, int]:
        previous = self.bulk.previous_leads(list(people))
        material = self._material
        rows = []
        for person_hash, signals in people.items():
            first = signals[0].row
            sealed, shape, key = first.material or material(first)
            change = signal_rule.apply_signals(signal_rule.LeadState(), map(self._gain, signals))
            town, village = _area_of(signals)
            rows.append(
                {
                    "person_hash": person_hash,
                    "id_number_enc": sealed,
                    "name": first.name,
                    "name_shape": shape,
                    "name_key": key,
                    "categories": change.categories,
                    "priority": change.priority,
                    "priority_reasons": change.reasons,
                    "town_id": town,
                    "village_id": village,
                    "previous": previous.get(person_hash),
                }
            )
        return self.bulk.insert_leads(rows, self.now)


def _chunks(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _cells(cells: list[Any]) -> list[str]:
    return [norm.fold(c) for c in cells]


def _is_total(cells: list[Any], name_index: int | None) -> bool:
    """A 合计 / 小计 / 总计 row: the word in the first column or the name's."""
    for index in {0, name_index}:
        if index is None or index >= len(cells):
            continue
        cell = cells[index]
        if isinstance(cell, str) and any(word in cell for word in TOTAL_WORDS):
            return True
    return False


def _area_of(signals: list[_Signal]) -> tuple[int | None, int | None]:
    """The first town and the first village these rows name."""
    town = village = None
    for s in signals:
        row = s.row
        town = town or row.town_id
        village = village or row.village_id
        if town and village:
            break
    return town, village


def describe(feed: Feed, values: dict[str, Any], *, period: str | None = None) -> str:
    """The plain-Chinese detail of one row, e.g. "单次自付 ¥32,400" or "新认定二级残疾"."""
    code = feed.code
    if code in ("hospital_oop", "insurance_oop"):
        return f"单次自付 {yuan(values['oop'])}"
    if code == "insurance_annual_oop":
        return f"{period}年累计自付 {yuan(values['oop'])}"
    if code == "disability_new":
        kind = values.get("disability_type") or ""
        return f"新认定{norm.GRADE_LABELS[values['grade']]}{kind}残疾"
    if code == "fire":
        return f"火灾损失 {yuan(values['loss'])}"
    if code == "disaster":
        loss = values.get("loss")
        text = values.get("event_type") or "灾害事故"
        return f"{text}，损失 {yuan(loss)}" if loss else text
    if code == "traffic_accident":
        return f"交通事故{values['injury']}"
    if code == "relapse_watch":
        return f"返贫风险：{values.get('risk') or '动态监测'}"
    if code == "education_aid":
        school = values.get("school")
        return f"申请教育资助（{school}）" if school else "申请教育资助"
    content = values.get("content") or "反映家庭困难"
    return content[:40]


def yuan(amount: Decimal | None) -> str:
    if amount is None:
        return ""
    if amount == amount.to_integral_value():
        return f"¥{int(amount):,}"
    return f"¥{amount:,.2f}"


def _facts_json(values: dict[str, Any]) -> str:
    """`dump_json(_facts(values))`, written directly for the usual kinds of value: the encoder's
    set-up per call costs more than the encoding of four fields."""
    parts = []
    for key, value in values.items():
        kind = value.__class__
        if kind is str:
            text = encode_basestring(value)
        elif kind is Decimal or kind is date:
            text = f'"{value}"'  # digits, point, dashes: nothing to escape
        elif kind is int:
            text = str(value)
        elif value is None:
            continue
        else:
            return dump_json(_facts(values))
        parts.append(f"{encode_basestring(key)}:{text}")
    return "{" + ",".join(parts) + "}"


def _facts(values: dict[str, Any]) -> dict[str, Any]:
    facts = {}
    for key, value in values.items():
        if value is None:
            continue
        kind = value.__class__
        facts[key] = str(value) if kind is Decimal else value.isoformat() if kind is date else value
    return facts


def _area_maps(
    db: Session,
) -> tuple[dict[str, int], dict[tuple[int | None, str], tuple[int, int]]]:
    towns: dict[str, int] = {}
    for town_id, code, name in db.execute(select(Town.id, Town.code, Town.name)):
        towns[code] = towns[name] = town_id
    villages: dict[tuple[int | None, str], tuple[int, int]] = {}
    for village_id, town_id, code, name in db.execute(
        select(Village.id, Village.town_id, Village.code, Village.name)
    ):
        for key in (name, code):
            villages[(town_id, key)] = (town_id, village_id)
            villages.setdefault((None, key), (town_id, village_id))
    return towns, villages


def _programme(value: object) -> RosterProgramme:
    text = norm.fold(value)
    for word, programme in _PROGRAMME_WORDS:
        if word in text:
            return programme
    try:
        return RosterProgramme(text)
    except ValueError:
        raise norm.CellError(
            "programme_unknown", f"救助类别应为低保、特困、孤困儿童或临时救助：{text[:20]}"
        ) from None


def _validators(feed: Feed, *, today: date) -> dict[str, tuple[Callable[[Any], Any], bool, bool]]:
    """Field → (converter, required, memoised), name and ID number first so their errors come
    first. Dates, short texts, years and grades repeat down a column and are memoised."""
    converters: dict[Kind, Callable[[Any], Any]] = {
        Kind.NAME: norm.name,
        Kind.ID: partial(norm.id_number, today=today),
        Kind.DATE: partial(norm.a_date, today=today),
        Kind.AMOUNT: norm.amount,
        Kind.YEAR: partial(norm.year, today=today),
        Kind.GRADE: norm.grade,
        Kind.TEXT: norm.text,
        Kind.PHONE: norm.phone,
    }
    result: dict[str, tuple[Callable[[Any], Any], bool, bool]] = {}
    for column in feed.columns:
        convert = converters[column.kind]
        if column.field == "programme":
            convert = _programme
        result[column.field] = (convert, column.required, column.kind in _MEMO_KINDS)
    return result
