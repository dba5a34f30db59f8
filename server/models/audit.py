"""The audit trail: state changes and unmasked views of personal data. Append-only and chained:
each entry carries a keyed hash of itself and of the entry before it (`services/kernel/audit.py`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DDL, BigInteger, Index, String, event
from sqlalchemy.orm import Mapped, mapped_column

from server.models.base import Base, intpk, key_string


class AuditEntry(Base):
    __tablename__ = "audit_entries"
    __table_args__ = (Index("ix_audit_target", "target_type", "target_id"),)

    id: Mapped[intpk]
    #: Position in the chain: 1, 2, 3… with no gaps (null only for entries from before 0014).
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    at: Mapped[datetime] = mapped_column(index=True)
    #: Who acted (null for the system: worker, scheduled checks; or a name nobody has).
    actor_id: Mapped[int | None] = mapped_column(index=True)
    actor_role: Mapped[str] = mapped_column(String(20))
    #: A dotted verb, e.g. `lead.created`, `dispatch.signed`, `pii.viewed`.
    action: Mapped[str] = mapped_column(String(60), index=True)
    target_type: Mapped[str] = mapped_column(String(40))
    target_id: Mapped[int | None]
    #: What changed (old/new values) or what was shown; never clear-text ID or phone numbers.
    detail: Mapped[dict[str, Any]]
    ip: Mapped[str | None] = mapped_column(String(64))
    #: The previous entry's `hash` ("" for the first), and HMAC-SHA256 over this entry's
    #: fields and `prev_hash` under `AUDIT_CHAIN_KEY`.
    prev_hash: Mapped[str | None] = mapped_column(key_string(64))
    hash: Mapped[str | None] = mapped_column(key_string(64))


class AuditChain(Base):
    """The chain's one head row: its last entry, and where verification starts (the entry
    after the last pruned one). Locked by every commit that appends, so two writers never
    chain onto the same entry."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)
    last_hash: Mapped[str] = mapped_column(key_string(64))
    #: The first entry still kept and the hash it must chain onto.
    first_seq: Mapped[int] = mapped_column(BigInteger)
    first_prev_hash: Mapped[str] = mapped_column(key_string(64))
    #: HMAC of the four values above under the chain key.
    mac: Mapped[str] = mapped_column(key_string(64))


#: On PostgreSQL the database itself refuses to change or delete an entry; only a transaction
#: that set `e_rescue.audit_prune` (the prune command) may delete, and only entries older than
#: the 180 days the law requires. (TRUNCATE is the table owner's: run the app as a role that
#: does not own its tables.) Created with the table here and by migration 0014.
APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION audit_entries_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE'
       AND current_setting('e_rescue.audit_prune', true) = 'on'
       AND OLD.at < now() - interval '180 days' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit_entries is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$
"""
APPEND_ONLY_TRIGGER = """
CREATE TRIGGER audit_entries_append_only BEFORE UPDATE OR DELETE ON audit_entries
FOR EACH ROW EXECUTE FUNCTION audit_entries_append_only()
"""
for _ddl in (APPEND_ONLY_FUNCTION, APPEND_ONLY_TRIGGER):
    event.listen(AuditEntry.__table__, "after_create", DDL(_ddl).execute_if(dialect="postgresql"))
