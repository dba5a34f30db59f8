"""A department file's rows as the importer checks them: each row validated into an accepted
row (its cells converted, its area found) or a rejected one with the reason staff read, total
rows skipped, and rejected rows kept up to a limit. `RowChecks` is the importer's part that
does it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.models import (
    RosterProgramme,
    Town,
    Village,
)
from server.services.feeds import normalise as norm
from server.services.feeds.reader import Table
from server.services.feeds.registry import Feed, Kind, OnRoster

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
    #: The ID number's hash under the other listed keys (a re-keying window, see
    #: kernel/rotation.py): what the person may still be stored under.
    old_hashes: tuple[str, ...] = ()
    #: The dedup keys this row had before they stopped depending on the lookup key (the
    #: person hash in the digest), under every listed key: evidence imported then is known.
    legacy_keys: tuple[str, ...] = ()


@dataclass
class Rejected:
    number: int
    column: str
    code: str
    message: str
    cells: list[str]


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


class RowChecks:
    """The importer's row checks: a mixin of `importer.Importer`, whose state they use."""

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
        old_hashes = self.pii.old_hashes if len(self.pii.cipher.lookup_kids) > 1 else None
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
                    if old_hashes is not None:
                        row.old_hashes = old_hashes(id_number)
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
