"""Comparing a department file's accepted rows with what we know (数据比对): the civil affairs
roster updated, once-per-period rules, and each person's signal attached to their open lead, or
a new lead opened, in bulk. `Comparison` is the importer's part that does it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy import bindparam, func, select, update

from server.models import (
    Channel,
    LeadEvidence,
    RosterEntry,
    RosterProgramme,
)
from server.services.feeds.bulk import dump_json
from server.services.feeds.namekeys import shape_key
from server.services.feeds.registry import OnRoster
from server.services.feeds.rows import (
    PROGRAMME_LABELS,
    Accepted,
    describe,
)
from server.services.kernel.access import SYSTEM
from server.services.kernel.audit import record_event
from server.services.leads import signal_rule
from server.services.leads.core import Signal, record_signal
from server.services.leads.merging import find_candidates


@dataclass(slots=True)
class _Signal:
    row: Accepted
    dedup_key: str
    summary: str
    reason: str
    categories: list[str]
    facts: str  # JSON


def _aliases(rows: Iterable[Accepted]) -> dict[str, str]:
    """Old hash -> current hash of these rows' people (empty outside a re-keying window)."""
    return {old: row.person_hash for row in rows if row.person_hash for old in row.old_hashes}


def _by_current(found: dict[str, Any], aliases: dict[str, str]) -> dict[str, Any]:
    """`found` (by stored hash) by the current hash; the current key's row wins."""
    out = {aliases[h]: v for h, v in found.items() if h in aliases}
    out.update((h, v) for h, v in found.items() if h not in aliases)
    return out


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


class Comparison:
    """The importer's comparison: a mixin of `importer.Importer`, whose state it uses."""

    # --- the roster (civil_affairs_new) -------------------------------------------------------

    def _update_roster(self, rows: list[Accepted]) -> None:
        latest: dict[str, Accepted] = {}
        for row in rows:
            latest[row.person_hash] = row
        aliases = _aliases(latest.values())
        stored = dict(
            self.db.execute(
                select(RosterEntry.person_hash, RosterEntry.person_hash).where(
                    RosterEntry.person_hash.in_([*latest, *aliases])
                )
            ).all()
        )
        # The hash each existing entry is stored under, by the row's current hash.
        existing = {aliases.get(h, h): h for h in stored}
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
                [self._roster_values(r) | {"b_hash": existing[r.person_hash]} for r in old],
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
        aliases = _aliases(rows)
        roster = {
            aliases.get(h, h): programme
            for h, programme in self.bulk.roster(
                list({r.person_hash for r in rows} | aliases.keys())
            ).items()
        }
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
        aliases = _aliases(rows)
        if aliases:  # raised before a re-keying, under the old key: raised all the same
            for h, period in self.bulk.ledger(rule, list(aliases)):
                by_key.pop((aliases[h], period), None)
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
        # A dedup key is per lead, and a row with an ID number lands on that person's lead, so
        # its key does not name the person: it survives a re-keying of the lookup hashes.
        person = "id" if row.person_hash else f"name:{row.name}|{row.phone}|{row.address}"
        # The period, or every normalised value in the feed's column order.
        rest = period if period is not None else "|".join(map(str, row.values.values()))
        digest = hashlib.blake2b(f"{person}|{rest}".encode(), digest_size=20).hexdigest()
        row.dedup_key = f"feed:{feed.code}:{digest}"
        if row.person_hash:  # the earlier form: the person hash in the digest
            row.legacy_keys = tuple(
                f"feed:{feed.code}:"
                + hashlib.blake2b(f"{h}|{rest}".encode(), digest_size=20).hexdigest()
                for h in (row.person_hash, *row.old_hashes)
            )

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
        aliases = _aliases(s.row for s in signals)
        open_leads = _by_current(bulk.open_leads([*by_person, *aliases]), aliases)
        missing = [h for h in by_person if h not in open_leads]
        created = self._open_new_leads({h: by_person[h] for h in missing}) if missing else {}
        if len(created) < len(missing):  # another import opened some of them meanwhile
            again = [h for h in missing if h not in created]
            again += [old for old, h in aliases.items() if h in again]
            open_leads.update(_by_current(bulk.open_leads(again), aliases))
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
            held = known.setdefault(lead_id, set())
            for s in person_signals:
                if s.row.legacy_keys and not held.isdisjoint(s.row.legacy_keys):
                    held.add(s.dedup_key)
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
        aliases = _aliases(s[0].row for s in people.values())
        previous: dict[str, int] = {}
        for h, lead_id in self.bulk.previous_leads([*people, *aliases]).items():
            current = aliases.get(h, h)
            previous[current] = max(previous.get(current, lead_id), lead_id)
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
