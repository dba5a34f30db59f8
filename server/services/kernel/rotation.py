"""Key rotation (the security administrator's, as an operator command): every sealed value
re-sealed, and every lookup hash re-keyed, under the current (first listed) key of
`FIELD_ENCRYPTION_KEY`.

Sealed columns are found, not listed: every text column named `*_enc` of every table, plus the
sealed values kept inside JSON (`SEALED_IN_JSON`: `*_enc` keys of household lists, on-behalf
blocks, a merge's record of what it filled). The lookup hashes are listed (`HASHED`): each is
the keyed hash of the normalised plaintext of a sealed sibling, and a row's hash is keyed by the
key that sealed that sibling (both are written by the same process under its first key), so
"sealed under an older key" finds the rows whose hashes are old too. Each batch reads values
not yet under the current key in primary-key order, opens them, re-seals them, re-hashes their
siblings and writes them back; the caller commits per batch, so a rotation can stop and be run
again (it only ever picks up what is left).

A person's ID number is hashed in several tables, and some are compared row with row (a lead
with a household member, an application with an aid grant). So re-keying an ID number also
re-keys *every* hash of that person (`PERSON_HASHES`: the same value in any table, including
those without a sealed sibling: aid grants, the once-per-period rule ledger) in the same
transaction; a person's rows change key together. Until the old key is removed, lookups match
under every listed key (`PersonalData.hashes`), so nothing is lost mid-rotation.

Not re-keyable, because their plaintext is not kept: the feed evidence dedup keys written
before re-keyed lookups existed (a one-way digest of the person hash with the row's values).
Since then a feed row's dedup key does not depend on any key (the lead it is on is the person),
and the importer also recognises the earlier form under every listed key; once an old key is
removed, a row sent again that was imported before this version can add its evidence to its
open lead once more (the ledger, re-keyed, still stops a once-per-period rule raising it twice).
Rule ledger rows and aid grants whose person is held nowhere else (their data deleted) are
re-keyed by nothing: `leftovers` counts them; after the old key goes they match no one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    Table,
    bindparam,
    case,
    func,
    not_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from server.db import savepoint
from server.models import Base
from server.services.kernel import idnumber
from server.services.kernel.pii import PersonalData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SealedColumn:
    table: Table
    column: Column
    key: Column

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column.name}"


def sealed_columns() -> list[SealedColumn]:
    found = []
    for table in Base.metadata.sorted_tables:
        keys = list(table.primary_key.columns)
        for column in table.columns:
            if column.name.endswith("_enc") and len(keys) == 1:
                found.append(SealedColumn(table, column, keys[0]))
    return found


#: How a sealed value is normalised before it is hashed, by kind.
NORMALISE: dict[str, Callable[[str], str]] = {
    "id": idnumber.normalise,
    "phone": idnumber.phone_digits,
}

#: Every lookup hash keyed by `FIELD_ENCRYPTION_KEY` with a sealed sibling it derives from:
#: (table, hash column, sealed column, kind).
HASHED: tuple[tuple[str, str, str, str], ...] = (
    ("leads", "person_hash", "id_number_enc", "id"),
    ("leads", "phone_hash", "phone_enc", "phone"),
    ("roster_entries", "person_hash", "id_number_enc", "id"),
    ("family_members", "id_hash", "id_number_enc", "id"),
    ("households", "head_id_hash", "head_id_enc", "id"),
    ("visits", "head_id_hash", "head_id_enc", "id"),
    ("applications", "id_hash", "id_number_enc", "id"),
)
#: Every column holding the keyed hash of a person's ID number, with or without a sealed
#: sibling: re-keyed together whenever one of the person's ID numbers is.
PERSON_HASHES: tuple[tuple[str, str], ...] = (
    *((t, h) for t, h, _, kind in HASHED if kind == "id"),
    ("aid_grants", "id_hash"),
    ("rule_ledger", "person_hash"),
)
#: Hash columns that are not keyed by FIELD_ENCRYPTION_KEY (plain SHA-256 of random tokens, a
#: password hash, a request digest, the audit chain under AUDIT_CHAIN_KEY): never re-keyed.
NOT_KEYED = frozenset(
    {
        "auth_tokens.token_hash",
        "helper_invitations.code_hash",
        "social_org_invitations.code_hash",
        "users.password_hash",
        "password_history.password_hash",
        "idempotency_records.request_hash",
        "audit_entries.hash",
        "audit_entries.prev_hash",
        "audit_chain.last_hash",
        "audit_chain.first_prev_hash",
    }
)
#: JSON columns that hold sealed values under `*_enc` keys (a `*_hash` beside one is its
#: phone's keyed hash, re-keyed with it).
SEALED_IN_JSON: tuple[tuple[str, str], ...] = (
    ("applications", "household"),
    ("applications", "on_behalf"),
    ("visits", "members"),
    ("households", "members"),
    ("lead_merges", "added"),
)


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _stale(column: Any, kid: str):  # noqa: ANN202
    return column.is_not(None) & not_(column.startswith(f"{kid}:", autoescape=True))


def left_to_rotate(db: Session, pii: PersonalData) -> dict[str, int]:
    """Values (sealed, and so their hashes) not yet under the current key, by column."""
    kid = pii.cipher.current_kid
    left = {
        s.name: db.scalar(select(func.count()).select_from(s.table).where(_stale(s.column, kid)))
        or 0
        for s in sealed_columns()
    }
    for table, column in SEALED_IN_JSON:
        left[f"{table}.{column}"] = sum(1 for _ in _stale_json_rows(db, table, column, kid))
    return left


def keys_in_use(db: Session, pii: PersonalData) -> dict[str, int]:
    """How many sealed values each listed key still seals (hashes follow their sealed value)."""
    counts = {kid: 0 for kid in pii.cipher.lookup_kids}
    for s in sealed_columns():
        for kid in counts:
            counts[kid] += (
                db.scalar(
                    select(func.count())
                    .select_from(s.table)
                    .where(s.column.startswith(f"{kid}:", autoescape=True))
                )
                or 0
            )
    return counts


def unlisted_keys(db: Session, pii: PersonalData) -> dict[str, int]:
    """Sealed values (and so lookup hashes) under a key id FIELD_ENCRYPTION_KEY does not list,
    by key id: what removing a key before its rotation ended would lose."""
    found: dict[str, int] = {}
    listed = pii.cipher.lookup_kids
    for s in sealed_columns():
        outside = s.column.is_not(None)
        for kid in listed:
            outside = outside & not_(s.column.startswith(f"{kid}:", autoescape=True))
        for (value,) in db.execute(select(s.column).where(outside).limit(1000)):
            kid = value.partition(":")[0]
            found[kid] = found.get(kid, 0) + 1
    for table, column in SEALED_IN_JSON:
        for _, value in _stale_json_rows(db, table, column, listed[0]):
            for kid in _kids_in(value):
                if kid not in listed:
                    found[kid] = found.get(kid, 0) + 1
    return found


def _kids_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        kids = {v.partition(":")[0] for k, v in value.items() if k.endswith("_enc") and v}
        return kids.union(*(_kids_in(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(_kids_in(v) for v in value))
    return set()


def leftovers(db: Session) -> dict[str, int]:
    """Person hashes held in a table with no sealed ID number (aid grants, the rule ledger)
    that match no person whose ID number we hold: nothing can re-key them, and once the key
    that hashed them is removed they match no one."""
    held = [
        select(_table(t).c[h]).where(_table(t).c[h].is_not(None))
        for t, h, _, kind in HASHED
        if kind == "id"
    ]
    union = held[0].union(*held[1:]).subquery()
    found = {}
    for table, column in (("aid_grants", "id_hash"), ("rule_ledger", "person_hash")):
        col = _table(table).c[column]
        found[f"{table}.{column}"] = (
            db.scalar(select(func.count()).where(col.not_in(select(union.c[0])))) or 0
        )
    return found


# --- one batch --------------------------------------------------------------------------------


def _pairs(sealed: SealedColumn) -> list[tuple[str, str]]:
    """(hash column, kind) derived from this sealed column."""
    return [
        (h, kind) for t, h, e, kind in HASHED if t == sealed.table.name and e == sealed.column.name
    ]


@dataclass
class Batch:
    """What one batch did: rows read, the last primary key read (the next batch starts after
    it), and the rows left as they were because re-keying them broke a unique index."""

    read: int
    last: Any = None
    skipped: list[Any] = field(default_factory=list)

    @property
    def done(self) -> int:
        return self.read - len(self.skipped)


def rotate_batch(
    db: Session,
    sealed: SealedColumn,
    pii: PersonalData,
    *,
    batch: int,
    rules: list[str] | None,
    after: Any = None,
    everything: bool = False,
    tables: frozenset[str] | None = None,
) -> Batch:
    """Re-seal up to `batch` values of one column past primary key `after`, re-key the hashes
    derived from them (and, for ID numbers, every hash of the same person anywhere).
    `everything`: every row, whatever key sealed it, for hashes written before a row's hash
    followed its sealed value.

    A row whose new hash is already taken in a unique index (the same person stored twice, once
    under each key: two open leads, say) is left as it was and reported in `skipped`; the rest
    of the batch goes on."""
    pairs = _pairs(sealed)
    hash_columns = [sealed.table.c[h] for h, _ in pairs]
    query = select(sealed.key, sealed.column, *hash_columns).order_by(sealed.key).limit(batch)
    if everything:
        query = query.where(sealed.column.is_not(None))
    else:
        query = query.where(_stale(sealed.column, pii.cipher.current_kid))
    if after is not None:
        query = query.where(sealed.key > after)
    rows = db.execute(query).all()
    if not rows:
        return Batch(0, after)
    params = []
    renamed: list[dict[str, str]] = []  # per row: a person's old hash -> new hash
    for key, value, *held in rows:
        plain = pii.open(value)
        assert plain is not None
        fresh = value if value.startswith(f"{pii.cipher.current_kid}:") else pii.seal(plain)
        row: dict[str, Any] = {"_key": key, "_value": fresh}
        names: dict[str, str] = {}
        for (name, kind), stored in zip(pairs, held, strict=True):
            if stored is None:  # no lookup kept for this value: none made now
                row[f"_{name}"] = None
                continue
            normalised = NORMALISE[kind](plain)
            new, *olds = pii.hashes(normalised)
            row[f"_{name}"] = new
            if kind == "id":
                names.update(dict.fromkeys({*olds, stored} - {new}, new))
        params.append(row)
        renamed.append(names)
    statement = (
        update(sealed.table)
        .where(sealed.key == bindparam("_key"))
        .values(
            {sealed.column.name: bindparam("_value")}
            | {name: bindparam(f"_{name}") for name, _ in pairs}
        )
        .execution_options(synchronize_session=False)
    )
    result = Batch(len(rows), rows[-1][0])
    try:
        with savepoint(db):
            db.execute(statement, params)
    except IntegrityError:
        for i, row in enumerate(params):
            try:
                with savepoint(db):
                    db.execute(statement, [row])
            except IntegrityError:
                log.warning(
                    "re-keying %s id %s: its new hash is taken (the same person stored twice)",
                    sealed.table.name,
                    row["_key"],
                )
                result.skipped.append(row["_key"])
                renamed[i] = {}
    people = {old: new for names in renamed for old, new in names.items()}
    if people:
        rekey_people(db, people, rules=rules, tables=tables)
    return result


#: Where a person hash is indexed only in parts (partial indexes), each part is re-keyed by
#: itself with its index's predicate, so no statement reads the whole table.
_SCOPES: dict[str, list[Any]] = {
    "leads": [text("leads.is_open"), text("NOT leads.is_open")],
    "family_members": [
        text("family_members.left_at IS NULL AND family_members.id_hash IS NOT NULL"),
        text("family_members.left_at IS NOT NULL"),
    ],
}
#: Values per CASE in `rekey_people` (SQLite binds at most 32766 parameters).
_CHUNK = 500


def rekey_people(
    db: Session,
    renamed: dict[str, str],
    *,
    rules: list[str] | None,
    tables: frozenset[str] | None = None,
) -> None:
    """Every person hash equal to an old hash in `renamed`, in every table (of `tables`, the
    ones that held rows when the rotation began: rows written since are under the new key),
    set to the new one. The rule ledger is updated rule by rule, so its (rule, person_hash,
    period) index is used."""
    items = list(renamed.items())
    for start in range(0, len(items), _CHUNK):
        part = dict(items[start : start + _CHUNK])
        for table_name, column_name in PERSON_HASHES:
            if tables is not None and table_name not in tables:
                continue
            table = _table(table_name)
            column = table.c[column_name]
            where = column.in_(list(part))
            scopes: list[Any] = _SCOPES.get(table_name, [None])
            if table_name == "rule_ledger" and rules is not None:
                scopes = [table.c.rule == rule for rule in rules]
            for scope in scopes:
                statement = (
                    update(table)
                    .where(where if scope is None else scope & where)
                    .values({column_name: case(part, value=column)})
                    .execution_options(synchronize_session=False)
                )
                try:
                    with savepoint(db):
                        db.execute(statement)
                except IntegrityError:
                    _rekey_one_by_one(db, table, column, part, scope)


def _rekey_one_by_one(db: Session, table: Table, column: Column, part: dict, scope: Any) -> None:
    """A new hash already taken in a unique index (a row written under the new key during the
    rotation beside the same person's old one): the others are re-keyed, that one is logged
    and left (it still matches while the old key is listed)."""
    for old, new in part.items():
        where = column == old
        try:
            with savepoint(db):
                db.execute(
                    update(table)
                    .where(where if scope is None else scope & where)
                    .values({column.name: new})
                    .execution_options(synchronize_session=False)
                )
        except IntegrityError:
            log.warning(
                "re-keying %s.%s: the new hash is taken; one row left", table.name, column.name
            )


def _stale_json(value: Any, kid: str) -> bool:
    if isinstance(value, dict):
        return any(
            (k.endswith("_enc") and isinstance(v, str) and not v.startswith(f"{kid}:"))
            or _stale_json(v, kid)
            for k, v in value.items()
        )
    if isinstance(value, list):
        return any(_stale_json(v, kid) for v in value)
    return False


def _reseal_json(value: Any, pii: PersonalData) -> Any:
    if isinstance(value, list):
        return [_reseal_json(v, pii) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: _reseal_json(v, pii) for k, v in value.items()}
    for k, v in value.items():
        if k.endswith("_enc") and isinstance(v, str):
            plain = pii.open(v)
            assert plain is not None
            out[k] = pii.seal(plain)
            beside = k[: -len("_enc")] + "_hash"
            if out.get(beside) is not None:
                out[beside] = pii.hash(NORMALISE["phone" if "phone" in k else "id"](plain))
    return out


def _stale_json_rows(
    db: Session, table_name: str, column_name: str, kid: str, *, after: Any = None, limit: int = 0
) -> Iterator[tuple[Any, Any]]:
    """(key, value) of rows whose JSON holds a value sealed under another key, in key order."""
    table = _table(table_name)
    key = next(iter(table.primary_key.columns))
    column = table.c[column_name]
    last, found = after, 0
    while True:
        query = select(key, column).where(column.is_not(None)).order_by(key).limit(1000)
        if last is not None:
            query = query.where(key > last)
        chunk = db.execute(query).all()
        if not chunk:
            return
        for row_key, value in chunk:
            last = row_key
            if _stale_json(value, kid):
                yield row_key, value
                found += 1
                if limit and found >= limit:
                    return


def rotate_json_batch(
    db: Session,
    table_name: str,
    column_name: str,
    pii: PersonalData,
    *,
    batch: int,
    after: Any = None,
) -> tuple[int, Any]:
    """Re-seal the values inside up to `batch` rows' JSON (past key `after`); returns how
    many rows and the last key."""
    table = _table(table_name)
    key = next(iter(table.primary_key.columns))
    rows = list(
        _stale_json_rows(
            db, table_name, column_name, pii.cipher.current_kid, after=after, limit=batch
        )
    )
    for row_key, value in rows:
        db.execute(
            update(table)
            .where(key == row_key)
            .values({column_name: _reseal_json(value, pii)})
            .execution_options(synchronize_session=False)
        )
    return len(rows), (rows[-1][0] if rows else after)


# --- the whole rotation -------------------------------------------------------------------------


def rotate(  # noqa: ANN201
    db_factory,  # noqa: ANN001
    pii: PersonalData,
    *,
    batch: int = 1000,
    everything: bool = False,
    skipped: list[tuple[str, Any]] | None = None,
) -> Iterator[tuple[str, int]]:
    """Every column, batch by batch, each batch in its own committed unit of work; yields
    (column, values re-sealed and re-keyed so far in it) after each batch, for progress.
    Columns with lookup hashes of ID numbers go first, so every person is re-keyed early.
    Rows left as they were (see `rotate_batch`) are added to `skipped` as (column, key).

    `everything`: also re-key the hashes of values already sealed under the current key, by
    primary key from the start (run again from the start if stopped): once, for data written
    before a hash followed its sealed value's key, when the *last* listed key keyed them all."""
    from server.db import unit_of_work

    with db_factory() as db:
        rules = list(db.scalars(select(_table("rule_ledger").c.rule).distinct()))
        tables = frozenset(
            name
            for name in {t for t, _ in PERSON_HASHES}
            if db.scalar(select(func.count()).select_from(select(_table(name)).limit(1).subquery()))
        )
    ordered = sorted(sealed_columns(), key=lambda s: not _pairs(s))
    for sealed in ordered:
        done = 0
        for whole in (True, False) if everything and _pairs(sealed) else (False,):
            after = None
            while True:
                with unit_of_work(db_factory) as db:
                    result = rotate_batch(
                        db,
                        sealed,
                        pii,
                        batch=batch,
                        rules=rules,
                        after=after,
                        everything=whole,
                        tables=tables,
                    )
                if not result.read:
                    break
                after = result.last
                if skipped is not None:
                    skipped += [(sealed.name, key) for key in result.skipped]
                done += result.done
                yield sealed.name, done
    for table, column in SEALED_IN_JSON:
        done, after = 0, None
        while True:
            with unit_of_work(db_factory) as db:
                n, after = rotate_json_batch(db, table, column, pii, batch=batch, after=after)
            if not n:
                break
            done += n
            yield f"{table}.{column}", done
