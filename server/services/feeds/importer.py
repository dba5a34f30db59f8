"""Importing a department file: validate rows, compare them with the roster and the open leads,
and add leads and evidence — in chunks, set-based.

Per chunk of rows the database sees a fixed number of statements whatever the chunk's size:
one IN-list lookup of the roster, one of the open leads (locked on PostgreSQL), one of closed
leads, one multi-row insert each for leads, evidence, ledger and rejected rows (ON CONFLICT DO
NOTHING … RETURNING), and one executemany update of the leads that gained evidence. Never one
query per row. Idempotent by construction: evidence carries a content key per person, so the
same file twice, or overlapping rows in a later file, add nothing; a once-per-period rule writes
a ledger row per person and period and raises nobody twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from server.models import (
    FeedBatch,
    FeedRejectedRow,
    RosterEntry,
    RosterProgramme,
    Town,
    Village,
)
from server.services.feeds import normalise as norm
from server.services.feeds.bulk import Bulk
from server.services.feeds.reader import Table
from server.services.feeds.registry import Feed, Kind, OnRoster
from server.services.leads import CATEGORIES
from server.services.pii import PersonalData

CHUNK_ROWS = 5000
#: Rejected rows kept per batch (the rest are counted): errors.xlsx gives these back.
MAX_REJECTED_KEPT = 10_000

PROGRAMME_LABELS = {
    RosterProgramme.DIBAO: "低保",
    RosterProgramme.TEKUN: "特困",
    RosterProgramme.ORPHAN: "孤困儿童",
    RosterProgramme.TEMPORARY: "临时救助",
}
_PROGRAMME_WORDS = (
    ("特困", RosterProgramme.TEKUN),
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
)


@dataclass
class Accepted:
    """A valid row, normalised: what the comparison works on."""

    number: int
    person_hash: str
    id_number: str
    name: str
    values: dict[str, Any]
    event_date: date | None
    town_id: int | None
    village_id: int | None


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
    """One chunk after validation, ready for the database stage."""

    read: int
    accepted: list[Accepted] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    earliest: date | None = None


@dataclass
class _Signal:
    row: Accepted
    dedup_key: str
    summary: str
    reason: str
    categories: list[str]
    facts: dict[str, Any]


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
    ) -> None:
        self.db = db
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
        self._categories_on = [c for c in feed.categories if c in CATEGORIES]
        self._categories_off = [
            c for c in (*feed.categories, *feed.categories_off_roster) if c in CATEGORIES
        ]

    # --- driving ------------------------------------------------------------------------------

    def run(self, table: Table) -> dict[str, Any]:
        """Import every data row of `table`.

        A two-stage pipeline: this thread reads and validates chunk N+1 (pure Python, no
        database) while one helper thread does chunk N's database work, which mostly waits on
        PostgreSQL or runs inside SQLite with the GIL released. The session is only ever used
        by one thread at a time: the stages hand over at `pending.result()`.
        """
        self.batch.header_row = table.header_row
        self.batch.header = table.header
        self.batch.rows_total = table.rows_total
        plan = self._plan(table)
        pool: ThreadPoolExecutor | None = None
        pending: Future[None] | None = None
        try:
            for chunk in _chunks(table.data_rows(), self.chunk_rows):
                checked = self._validate(chunk, plan)
                if pending is None and pool is None and len(chunk) < self.chunk_rows:
                    self._store(checked)  # a small file: one chunk, no thread
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
        counts["accepted"] += len(checked.accepted)
        counts["rejected"] += len(checked.rejected)
        earliest = self.progress.earliest_event
        if checked.earliest is not None and (earliest is None or checked.earliest < earliest):
            self.progress.earliest_event = checked.earliest
        self._keep_rejected(checked.rejected)
        if self.feed.on_roster is OnRoster.ROSTER:
            self._update_roster(checked.accepted)
        else:
            self._compare(checked.accepted)
        self.batch.rows_done = counts["read"]
        self.batch.result = self.result()
        self.db.flush()
        if self.checkpoint is not None:
            self.checkpoint(self.batch)

    # --- validation ---------------------------------------------------------------------------

    def _plan(self, table: Table) -> list[tuple[str, Callable[[Any], Any], bool, int | None, str]]:
        """(field, converter, required, cell index, header label) for each field of the feed."""
        return [
            (
                name,
                convert,
                required,
                table.columns.get(name),
                table.header[table.columns[name]] if name in table.columns else name,
            )
            for name, (convert, required) in self._validators.items()
        ]

    def _validate(
        self,
        chunk: list[tuple[int, list[Any]]],
        plan: list[tuple[str, Callable[[Any], Any], bool, int | None, str]],
    ) -> _Checked:
        """Normalise and check each row (no database): accepted rows carry the keyed hash."""
        checked = _Checked(read=len(chunk))
        accepted, rejected = checked.accepted, checked.rejected
        hash_ = self.pii.hash
        date_field = self.feed.date_field
        area = self._area
        earliest = None
        for number, cells in chunk:
            values: dict[str, Any] = {}
            width = len(cells)
            for name, convert, required, index, label in plan:
                raw = cells[index] if index is not None and index < width else None
                if raw is None or raw == "" or (raw.__class__ is str and not raw.strip()):
                    if required:
                        rejected.append(
                            Rejected(number, label, "required", f"{label}为空", _cells(cells))
                        )
                        break
                    values[name] = None
                    continue
                try:
                    values[name] = convert(raw)
                except norm.CellError as exc:
                    rejected.append(Rejected(number, label, exc.code, exc.message, _cells(cells)))
                    break
            else:
                id_number = values.pop("id_number")
                event = values.get(date_field) if date_field else None
                town, village = values.pop("town", None), values.pop("village", None)
                town_id, village_id = area(town, village) if town or village else (None, None)
                accepted.append(
                    Accepted(
                        number,
                        hash_(id_number),
                        id_number,
                        values.pop("name"),
                        values,
                        event,
                        town_id,
                        village_id,
                    )
                )
                if event is not None and (earliest is None or event < earliest):
                    earliest = event
        checked.earliest = earliest
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
        self.db.execute(
            FeedRejectedRow.__table__.insert(),
            [
                {
                    "batch_id": self.batch.id,
                    "row_number": r.number,
                    "column": r.column[:100],
                    "code": r.code[:40],
                    "message": r.message[:300],
                    "values_enc": self.pii.seal(json.dumps(r.cells, ensure_ascii=False)),
                }
                for r in keep
            ],
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
        if feed.threshold_field is not None and feed.threshold is not None:
            field_, threshold = feed.threshold_field, feed.threshold
            above = [r for r in rows if r.values[field_] >= threshold]
            counts["below_threshold"] += len(rows) - len(above)
            rows = above
        if not rows:
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

    def _signal(self, row: Accepted, programme: str | None) -> _Signal:
        feed = self.feed
        period = self._period(row) if feed.period_rule else None
        reason = f"{feed.reason_prefix}: {describe(feed, row.values, period=period)}"[:200]
        facts = _facts(row.values)
        summary = reason
        categories = self._categories_on if programme is not None else self._categories_off
        if programme is not None:
            label = PROGRAMME_LABELS.get(RosterProgramme(programme), programme)
            facts["on_roster"] = programme
            if feed.special_aid:
                facts["suggested_aid"] = feed.special_aid
                summary = f"{reason}（已享{label}，建议{feed.special_aid}）"[:200]
            else:
                summary = f"{reason}（已享{label}）"[:200]
        if period is not None:
            key_source = f"{row.person_hash}|{period}"
        else:  # every normalised value, in the feed's column order
            key_source = "|".join([row.person_hash, *map(str, row.values.values())])
        digest = hashlib.blake2b(key_source.encode(), digest_size=20).hexdigest()
        return _Signal(row, f"feed:{feed.code}:{digest}", summary, reason, categories, facts)

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
        known = bulk.evidence_keys(existing_ids, self.feed.code) if existing_ids else set()
        evidence: list[tuple[Any, ...]] = []
        seen: set[tuple[int, str]] = set()
        updates = []
        for person_hash, person_signals in by_person.items():
            lead_id = created.get(person_hash)
            lead = None if lead_id is not None else open_leads[person_hash]
            if lead is not None:
                lead_id = lead.id
            assert lead_id is not None
            fresh = []
            for s in person_signals:
                key = (lead_id, s.dedup_key)
                if key in known or key in seen:
                    continue
                seen.add(key)
                fresh.append(s)
                row = s.row
                evidence.append(
                    (lead_id, row.number, s.summary, s.facts, row.event_date, s.dedup_key)
                )
            if lead is not None and fresh:
                old_reasons = lead.reasons
                categories, reasons = _merge(lead.categories, old_reasons, fresh)
                gained = len(reasons) - len(old_reasons)
                updates.append(
                    {
                        "id": lead.id,
                        "categories": categories,
                        "priority": lead.priority + self.feed.priority * gained,
                        "priority_reasons": reasons,
                        "town_id": _first(s.row.town_id for s in fresh),
                        "village_id": _first(s.row.village_id for s in fresh),
                    }
                )
        bulk.insert_evidence(evidence, self.feed.code, self.batch.id, self.now)
        bulk.update_leads(updates, self.now)
        counts["leads_created"] += len(created)
        counts["leads_updated"] += len(updates)
        counts["duplicates"] += len(signals) - len(evidence)

    def _open_new_leads(self, people: dict[str, list[_Signal]]) -> dict[str, int]:
        from server.services.matching import shape_key

        previous = self.bulk.previous_leads(list(people))
        seal = self.pii.seal
        rows = []
        for person_hash, signals in people.items():
            first = signals[0].row
            categories, reasons = _merge([], [], signals)
            rows.append(
                {
                    "person_hash": person_hash,
                    "id_number_enc": seal(first.id_number),
                    "name": first.name,
                    "name_shape": shape_key(first.name)[:50] or None,
                    "categories": categories,
                    "priority": self.feed.priority * len(reasons),
                    "priority_reasons": reasons,
                    "town_id": _first(s.row.town_id for s in signals),
                    "village_id": _first(s.row.village_id for s in signals),
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


def _first(values: Iterable[int | None]) -> int | None:
    return next((v for v in values if v), None)


def _merge(
    categories: list[str], reasons: list[str], signals: list[_Signal]
) -> tuple[list[str], list[str]]:
    categories, reasons = list(categories), list(reasons)
    for s in signals:
        categories += [c for c in s.categories if c not in categories]
        if s.reason not in reasons:
            reasons.append(s.reason)
    return categories, reasons


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


def _validators(feed: Feed, *, today: date) -> dict[str, tuple[Callable[[Any], Any], bool]]:
    """Field → (converter, required), name and ID number first so their errors come first."""
    converters: dict[Kind, Callable[[Any], Any]] = {
        Kind.NAME: norm.name,
        Kind.ID: partial(norm.id_number, today=today),
        Kind.DATE: partial(norm.a_date, today=today),
        Kind.AMOUNT: norm.amount,
        Kind.YEAR: partial(norm.year, today=today),
        Kind.GRADE: norm.grade,
        Kind.TEXT: norm.text,
    }
    result: dict[str, tuple[Callable[[Any], Any], bool]] = {}
    for column in feed.columns:
        convert = converters[column.kind]
        if column.field == "programme":
            convert = _programme
        result[column.field] = (convert, column.required)
    return result
