"""The importer's hot statements, written for each engine's fastest bulk path.

Runs on the session's own DBAPI connection, inside its transaction. The ORM unit of work and even
Core's per-row parameter processing cost more than the database itself at 100,000 rows (see
bench/ingest.py), so here the values are prepared once per chunk:

- PostgreSQL: new leads and evidence go in with COPY (the server's cheapest way in; lead ids
  drawn from the sequence first), inside a savepoint, with an `INSERT … SELECT … FROM unnest(…)
  ON CONFLICT DO NOTHING` to fall back on when another import got there first. Other steps are
  one statement per chunk over whole columns sent as arrays (`UPDATE … FROM unnest(…)`, ledger
  inserts); lookups use `= ANY(%b)` with one array parameter. Arrays are sent in binary
  (`%b`): the text form quotes and escapes every element on the client.
- SQLite: `executemany` with plain tuples. The chunk takes the write lock with its first
  statement, so nobody else can add a lead between our lookup and our insert, and new leads'
  ids are assigned here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from json.encoder import encode_basestring
from typing import Any

from sqlalchemy.orm import Session

from server.db import copy_rows


@dataclass
class OpenLead:
    """An open lead as the importer needs it; the JSON lists are decoded only when used."""

    id: int
    raw_categories: Any
    priority: int
    raw_reasons: Any
    town_id: int | None
    village_id: int | None

    @property
    def categories(self) -> list[str]:
        return _loads(self.raw_categories)

    @property
    def reasons(self) -> list[str]:
        return _loads(self.raw_reasons)


#: The columns a new lead and an evidence row are written with (in this order).
_LEAD_COLUMNS = (
    "person_hash",
    "id_number_enc",
    "name",
    "name_shape",
    "name_key",
    "status",
    "is_open",
    "channel",
    "categories",
    "priority",
    "priority_reasons",
    "town_id",
    "village_id",
    "previous_lead_id",
    "created_at",
    "updated_at",
    "version",
)
_EVIDENCE_COLUMNS = (
    "lead_id",
    "channel",
    "feed_code",
    "batch_id",
    "department_id",
    "row_number",
    "summary",
    "facts",
    "event_date",
    "dedup_key",
    "priority_reason",
    "priority_points",
    "created_at",
)


#: Compact JSON as the lead rows store it (public: the importer writes the same text).
dump_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _dumps_texts(values: list[str]) -> str:
    """`dump_json` of a list of strings (categories, priority reasons) without the encoder's
    per-call set-up; the same text."""
    try:
        return "[" + ",".join(map(encode_basestring, values)) + "]"
    except TypeError:  # not all strings (a lead written by hand?): the general encoder
        return dump_json(values)


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else (value or [])


class Bulk:
    """One per import; `pg` selects the PostgreSQL statements, else SQLite's."""

    #: SQLite allows 32,766 parameters per statement; IN-lists are cut well below that.
    SQLITE_IN = 10_000

    #: SQLite page cache for the import's connection (KiB; SQLite's default is 2 MiB): the
    #: roster and lead indexes are probed and extended 100,000 times per file.
    SQLITE_CACHE_KIB = 65536

    def __init__(self, db: Session) -> None:
        self.db = db
        self.pg = db.get_bind().dialect.name == "postgresql"

    def begin_chunk(self, batch_id: int, rows_done: int, *, async_commit: bool) -> None:
        """The chunk's first statement is a write, so SQLite hands us its write lock before we
        read (nobody can open a lead between our lookup and our insert). With `async_commit`
        (worker and CLI, which commit per chunk) PostgreSQL does not wait for the disk at each
        chunk's commit: a chunk lost in a crash is simply imported again (idempotent)."""
        cursor = self._cursor()
        if self.pg:
            if async_commit:
                cursor.execute("SET LOCAL synchronous_commit = off")
            cursor.execute(
                "UPDATE feed_batches SET rows_done = %s WHERE id = %s", (rows_done, batch_id)
            )
            return
        cursor.execute(f"PRAGMA cache_size = -{self.SQLITE_CACHE_KIB}")
        cursor.execute("UPDATE feed_batches SET rows_done = ? WHERE id = ?", (rows_done, batch_id))

    def _cursor(self) -> Any:
        return self.db.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]

    def _copy(self, table: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> bool:
        """PostgreSQL: COPY `rows` into `table` inside a savepoint. COPY is the server's
        cheapest way in (no per-row executor, no conflict arbitration), but it has no ON
        CONFLICT: when a row breaks a unique index after all (another import got there first)
        nothing of it stays and the answer is False, for the caller's INSERT … ON CONFLICT."""
        from psycopg.errors import UniqueViolation

        cursor = self._cursor()
        cursor.execute("SAVEPOINT feed_copy")
        try:
            copy_rows(cursor, table, columns, rows)
        except UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT feed_copy")
            return False
        cursor.execute("RELEASE SAVEPOINT feed_copy")
        return True

    def _ts(self, value: datetime) -> Any:
        if self.pg:
            return value
        # SQLAlchemy's SQLite DateTime format, in UTC as AwareDateTime stores it.
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")

    def _day(self, value: date | None) -> Any:
        if value is None or self.pg:
            return value
        return value.isoformat()

    def _select_in(self, sql: str, values: Sequence[Any], extra: tuple[Any, ...] = ()) -> list[Any]:
        """Run `sql` whose `{in}` stands for "= ANY(array)" / "IN (?, …)" over `values`."""
        cursor = self._cursor()
        if not values:
            return []
        if self.pg:
            cursor.execute(sql.format(**{"in": "= ANY(%b)"}), (list(values), *extra))
            return cursor.fetchall()
        rows: list[Any] = []
        for start in range(0, len(values), self.SQLITE_IN):
            part = values[start : start + self.SQLITE_IN]
            marks = "IN (" + ",".join("?" * len(part)) + ")"
            cursor.execute(sql.format(**{"in": marks}).replace("%s", "?"), (*part, *extra))
            rows.extend(cursor.fetchall())
        return rows

    # --- lookups --------------------------------------------------------------------------

    def _per_hash(self, select: str, table: str, where: str, hashes: Sequence[str]) -> list[Any]:
        """PostgreSQL: `select` from the one row of `table` per hash (`where`), found by an index
        probe per hash. With `= ANY(array)` the planner expects every hash to match and scans
        the whole table instead, which costs more the larger the table (the roster, the
        leads), not the chunk; LIMIT 1 in a LATERAL subquery keeps the probes."""
        cursor = self._cursor()
        cursor.execute(
            f"SELECT {select} FROM unnest(%b::text[]) AS u(h) CROSS JOIN LATERAL "
            f"(SELECT * FROM {table} WHERE person_hash = u.h AND {where} LIMIT 1) AS t",
            (list(hashes),),
        )
        return cursor.fetchall()

    def roster(self, hashes: Sequence[str]) -> dict[str, str]:
        if self.pg:
            return dict(
                self._per_hash("t.person_hash, t.programme", "roster_entries", "true", hashes)
            )
        return dict(
            self._select_in(
                "SELECT person_hash, programme FROM roster_entries WHERE person_hash {in}", hashes
            )
        )

    def open_leads(self, hashes: Sequence[str]) -> dict[str, OpenLead]:
        """The open leads of these people, locked (PostgreSQL) until the chunk commits.

        Locked in the order of the sorted hashes: one lock order, so concurrent imports cannot
        deadlock (the probes run in the array's order)."""
        columns = "person_hash, id, categories, priority, priority_reasons, town_id, village_id"
        if self.pg:
            rows = self._per_hash(
                ", ".join(f"t.{c}" for c in columns.split(", ")),
                "leads",
                "is_open FOR UPDATE",
                sorted(hashes),
            )
        else:
            rows = self._select_in(
                f"SELECT {columns} FROM leads WHERE person_hash {{in}} AND is_open", hashes
            )
        return {r[0]: OpenLead(r[1], r[2], r[3] or 0, r[4], r[5], r[6]) for r in rows}

    def previous_leads(self, hashes: Sequence[str]) -> dict[str, int]:
        """The latest closed lead of each person, which a new lead continues: probes of the
        partial index ix_leads_closed_person (the predicate is written as the index's)."""
        return dict(
            self._select_in(
                "SELECT person_hash, MAX(id) FROM leads WHERE person_hash {in} "
                "AND NOT is_open GROUP BY person_hash",
                hashes,
            )
        )

    def evidence_keys(self, lead_ids: Sequence[int], feed_code: str) -> set[tuple[int, str]]:
        """This feed's evidence already on these leads. Filtered by the key's feed prefix here,
        not by `feed_code` in SQL: a planner with stale statistics would AND in the feed_code
        index and read every row of the feed for each chunk."""
        prefix = f"feed:{feed_code}:"
        return {
            (r[0], r[1])
            for r in self._select_in(
                "SELECT lead_id, dedup_key FROM lead_evidence WHERE lead_id {in}", lead_ids
            )
            if r[1].startswith(prefix)
        }

    def ledger(self, rule: str, hashes: Sequence[str]) -> set[tuple[str, str]]:
        return {
            (r[0], r[1])
            for r in self._select_in(
                "SELECT person_hash, period FROM rule_ledger WHERE person_hash {in} AND rule = %s",
                hashes,
                (rule,),
            )
        }

    # --- writes ---------------------------------------------------------------------------

    def insert_ledger(
        self, rule: str, keys: Sequence[tuple[str, str]], batch_id: int, now: datetime
    ) -> set[tuple[str, str]]:
        """Ledger rows for (person, period); returns those that were not there yet."""
        if not keys:
            return set()
        cursor = self._cursor()
        if self.pg:
            cursor.execute(
                "INSERT INTO rule_ledger (rule, person_hash, period, batch_id, created_at) "
                "SELECT %s, h, p, %s, %s FROM unnest(%b::text[], %b::text[]) AS u(h, p) "
                "ON CONFLICT (rule, person_hash, period) DO NOTHING RETURNING person_hash, period",
                (rule, batch_id, now, [k[0] for k in keys], [k[1] for k in keys]),
            )
            return {(r[0], r[1]) for r in cursor.fetchall()}
        known = self.ledger(rule, list({k[0] for k in keys}))
        fresh = [k for k in keys if k not in known]
        cursor.executemany(
            "INSERT INTO rule_ledger (rule, person_hash, period, batch_id, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [(rule, h, p, batch_id, self._ts(now)) for h, p in fresh],
        )
        return set(fresh)

    def insert_leads(self, rows: list[dict[str, Any]], now: datetime) -> dict[str, int]:
        """New open leads (channel feed, status new); returns person_hash → id of those created.

        On PostgreSQL the ids are drawn from the sequence and the rows copied; if another
        transaction opened one of these people's lead meanwhile, the copy gives way to an
        INSERT that skips those people (ON CONFLICT on the partial unique index) and the caller
        attaches to their lead instead. On SQLite the chunk
        holds the write lock: nobody else can open a lead, and the ids are assigned here as
        SQLite would (after the largest), which spares a lookup of the new ids.
        """
        if not rows:
            return {}
        cursor = self._cursor()
        columns = ", ".join(_LEAD_COLUMNS)
        if self.pg:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence('leads', 'id')) FROM generate_series(1, %s)",
                (len(rows),),
            )
            ids = [r[0] for r in cursor.fetchall()]
            copied = self._copy(
                "leads",
                ("id", *_LEAD_COLUMNS),
                (
                    (
                        ids[i],
                        row["person_hash"],
                        row["id_number_enc"],
                        row["name"],
                        row["name_shape"],
                        row["name_key"],
                        "new",
                        True,
                        "feed",
                        _dumps_texts(row["categories"]),
                        row["priority"],
                        _dumps_texts(row["priority_reasons"]),
                        row["town_id"],
                        row["village_id"],
                        row["previous"],
                        now,
                        now,
                        1,
                    )
                    for i, row in enumerate(rows)
                ),
            )
            if copied:
                return {row["person_hash"]: ids[i] for i, row in enumerate(rows)}
            cursor.execute(
                f"INSERT INTO leads ({columns}) "
                "SELECT h, enc, n, sh, nk, 'new', true, 'feed', c::jsonb, p, r::jsonb, t, v, "
                "prev, %s, %s, 1 FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], "
                "%b::text[], %b::text[], %b::int[], %b::text[], %b::bigint[], %b::bigint[], "
                "%b::bigint[]) AS u(h, enc, n, sh, nk, c, p, r, t, v, prev) "
                "ON CONFLICT (person_hash) WHERE is_open DO NOTHING RETURNING person_hash, id",
                (
                    now,
                    now,
                    *[
                        [row[k] for row in rows]
                        for k in ("person_hash", "id_number_enc", "name", "name_shape", "name_key")
                    ],
                    [_dumps_texts(row["categories"]) for row in rows],
                    [row["priority"] for row in rows],
                    [_dumps_texts(row["priority_reasons"]) for row in rows],
                    *[[row[k] for row in rows] for k in ("town_id", "village_id", "previous")],
                ),
            )
            return dict(cursor.fetchall())
        ts = self._ts(now)
        first = cursor.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM leads").fetchone()[0]
        cursor.executemany(
            f"INSERT INTO leads (id, {columns}) "
            "VALUES (?, ?, ?, ?, ?, ?, 'new', 1, 'feed', ?, ?, ?, ?, ?, ?, ?, ?, 1)",
            [
                (
                    first + i,
                    row["person_hash"],
                    row["id_number_enc"],
                    row["name"],
                    row["name_shape"],
                    row["name_key"],
                    _dumps_texts(row["categories"]),
                    row["priority"],
                    _dumps_texts(row["priority_reasons"]),
                    row["town_id"],
                    row["village_id"],
                    row["previous"],
                    ts,
                    ts,
                )
                for i, row in enumerate(rows)
            ],
        )
        return {row["person_hash"]: first + i for i, row in enumerate(rows)}

    def insert_evidence(
        self,
        rows: list[tuple[Any, ...]],
        feed_code: str,
        batch_id: int,
        department_id: int | None,
        now: datetime,
    ) -> None:
        """Evidence rows (lead_id, row_number, summary, facts as JSON, event_date, dedup_key,
        priority reason, priority points)."""
        if not rows:
            return
        cursor = self._cursor()
        columns = ", ".join(_EVIDENCE_COLUMNS)
        if self.pg:
            # Keys already on the leads were left out by the caller, under the leads' row
            # locks; the INSERT below only runs if the copy met one after all.
            if self._copy(
                "lead_evidence",
                _EVIDENCE_COLUMNS,
                (
                    (
                        r[0],
                        "feed",
                        feed_code,
                        batch_id,
                        department_id,
                        r[1],
                        r[2],
                        r[3],
                        r[4],
                        r[5],
                        r[6],
                        r[7],
                        now,
                    )
                    for r in rows
                ),
            ):
                return
            cursor.execute(
                f"INSERT INTO lead_evidence ({columns}) "
                "SELECT l, 'feed', %s, %s, %s, rn, s, f::jsonb, d, k, pr, pp, %s FROM unnest("
                "%b::bigint[], %b::int[], %b::text[], %b::text[], %b::date[], %b::text[], "
                "%b::text[], %b::int[]) "
                "AS u(l, rn, s, f, d, k, pr, pp) ON CONFLICT (lead_id, dedup_key) DO NOTHING",
                (
                    feed_code,
                    batch_id,
                    department_id,
                    now,
                    [r[0] for r in rows],
                    [r[1] for r in rows],
                    [r[2] for r in rows],
                    [r[3] for r in rows],
                    [r[4] for r in rows],
                    [r[5] for r in rows],
                    [r[6] for r in rows],
                    [r[7] for r in rows],
                ),
            )
            return
        ts = self._ts(now)
        cursor.executemany(
            f"INSERT OR IGNORE INTO lead_evidence ({columns}) "
            "VALUES (?, 'feed', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    r[0],
                    feed_code,
                    batch_id,
                    department_id,
                    r[1],
                    r[2],
                    r[3],
                    self._day(r[4]),
                    r[5],
                    r[6],
                    r[7],
                    ts,
                )
                for r in rows
            ],
        )

    def insert_rejected(self, rows: list[tuple[Any, ...]]) -> None:
        """Rejected rows (batch_id, row_number, column, code, message, values_enc)."""
        if not rows:
            return
        columns = 'batch_id, row_number, "column", code, message, values_enc'
        if self.pg:
            cursor = self._cursor()
            with cursor.copy(f"COPY feed_rejected_rows ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        self._cursor().executemany(
            f"INSERT INTO feed_rejected_rows ({columns}) VALUES (?, ?, ?, ?, ?, ?)", rows
        )

    def update_leads(self, rows: list[dict[str, Any]], now: datetime) -> None:
        """Existing leads that gained evidence. `version` moves on, so staff holding an older
        copy get a 409 rather than overwrite what the feed added."""
        if not rows:
            return
        cursor = self._cursor()
        if self.pg:
            cursor.execute(
                "UPDATE leads SET categories = u.c::jsonb, priority = u.p, "
                "priority_reasons = u.r::jsonb, town_id = COALESCE(leads.town_id, u.t), "
                "village_id = COALESCE(leads.village_id, u.v), updated_at = %s, "
                "version = leads.version + 1 FROM unnest(%b::bigint[], %b::text[], %b::int[], "
                "%b::text[], %b::bigint[], %b::bigint[]) AS u(id, c, p, r, t, v) "
                "WHERE leads.id = u.id",
                (
                    now,
                    [r["id"] for r in rows],
                    [_dumps_texts(r["categories"]) for r in rows],
                    [r["priority"] for r in rows],
                    [_dumps_texts(r["priority_reasons"]) for r in rows],
                    [r["town_id"] for r in rows],
                    [r["village_id"] for r in rows],
                ),
            )
            return
        ts = self._ts(now)
        cursor.executemany(
            "UPDATE leads SET categories = ?, priority = ?, priority_reasons = ?, "
            "town_id = COALESCE(town_id, ?), village_id = COALESCE(village_id, ?), "
            "updated_at = ?, version = version + 1 WHERE id = ?",
            [
                (
                    _dumps_texts(r["categories"]),
                    r["priority"],
                    _dumps_texts(r["priority_reasons"]),
                    r["town_id"],
                    r["village_id"],
                    ts,
                    r["id"],
                )
                for r in rows
            ],
        )
