"""The audit trail is append-only and chained: a deleted, altered or cut-off entry is found by
`e-rescue audit verify`; concurrent writers never fork the chain; pruning past retention
keeps what is left verifiable; the trail exports as JSON lines."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from server import clock
from server.cli import main
from server.models import AuditChain, AuditEntry
from server.services.kernel import audit, audit_chain
from server.services.kernel.access import SYSTEM


def write(db, n: int = 1, *, days_ago: int = 0, action: str = "lead.created") -> None:
    for i in range(n):
        audit.record(
            db,
            actor=SYSTEM,
            action=action,
            target_type="lead",
            target_id=i,
            now=clock.now() - timedelta(days=days_ago),
            detail={"i": i, "note": "说明"},
        )
    db.commit()


def verify(db, runtime) -> audit_chain.ChainReport:
    db.expire_all()
    return audit_chain.verify(db, key=runtime.config.audit_chain_key_bytes)


@contextmanager
def as_the_database_owner(runtime) -> Iterator:
    """A connection that can do what an intruder with database access could: on PostgreSQL
    the append-only trigger is switched off for its transaction."""
    trigger = "TRIGGER audit_entries_append_only"
    with runtime.engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"ALTER TABLE audit_entries DISABLE {trigger}"))
        yield conn
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"ALTER TABLE audit_entries ENABLE {trigger}"))


def test_each_entry_is_chained_onto_the_one_before(db, runtime):
    write(db, 3)
    entries = db.scalars(select(AuditEntry).order_by(AuditEntry.seq)).all()
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == "" and entries[1].prev_hash == entries[0].hash
    report = verify(db, runtime)
    assert report.ok and report.checked == 3


@pytest.mark.parametrize(
    ("tamper", "broken_at"),
    [
        ("DELETE FROM audit_entries WHERE seq = 2", 2),
        ("UPDATE audit_entries SET action = 'lead.closed' WHERE seq = 3", 3),
        ('UPDATE audit_entries SET detail = \'{"i": 9, "note": "说明"}\' WHERE seq = 1', 1),
        ("DELETE FROM audit_entries WHERE seq >= 4", 4),
    ],
)
def test_a_deleted_altered_or_cut_off_entry_is_found(db, runtime, tamper, broken_at):
    write(db, 5)
    with as_the_database_owner(runtime) as conn:
        conn.execute(text(tamper))
    report = verify(db, runtime)
    assert not report.ok and report.broken_at == broken_at, report


def test_rewriting_the_head_to_hide_a_cut_needs_the_key(db, runtime):
    write(db, 4)
    with as_the_database_owner(runtime) as conn:
        last = conn.execute(text("SELECT hash FROM audit_entries WHERE seq = 3")).scalar_one()
        conn.execute(text("DELETE FROM audit_entries WHERE seq = 4"))
        conn.execute(text("UPDATE audit_chain SET last_seq = 3, last_hash = :h"), {"h": last})
    report = verify(db, runtime)
    assert not report.ok and "链头" in report.problem


def test_the_verify_command_exits_1_on_a_break(db, runtime, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    write(db, 3)
    ok = CliRunner().invoke(main, ["audit", "verify"])
    assert ok.exit_code == 0 and "3 entries checked" in ok.output
    with as_the_database_owner(runtime) as conn:
        conn.execute(text("UPDATE audit_entries SET ip = '10.6.6.6' WHERE seq = 2"))
    broken = CliRunner().invoke(main, ["audit", "verify"])
    assert broken.exit_code == 1 and "entry 2" in broken.output


def test_concurrent_writers_never_fork_the_chain(runtime, db):
    writers, each = 12, 5
    barrier = threading.Barrier(writers, timeout=30)
    failures: list[BaseException] = []

    def run() -> None:
        try:
            with runtime.session_factory() as session:
                barrier.wait()
                for _ in range(each):
                    write(session)
        except BaseException as exc:  # noqa: BLE001
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    seqs = db.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq)).all()
    assert seqs == list(range(1, writers * each + 1))
    assert verify(db, runtime).ok


def test_a_rolled_back_savepoint_drops_only_its_own_entries(db, runtime):
    audit.record(db, actor=SYSTEM, action="kept", target_type="x", target_id=1, now=clock.now())
    savepoint = db.begin_nested()
    audit.record(db, actor=SYSTEM, action="dropped", target_type="x", target_id=2, now=clock.now())
    savepoint.rollback()
    db.commit()
    assert db.scalars(select(AuditEntry.action)).all() == ["kept"]
    assert verify(db, runtime).ok


def test_a_rolled_back_transaction_writes_no_entry(db, runtime):
    write(db, 1)
    audit.record(db, actor=SYSTEM, action="gone", target_type="x", target_id=1, now=clock.now())
    db.rollback()
    db.commit()
    assert db.scalar(select(func.count()).select_from(AuditEntry)) == 1


def test_postgresql_refuses_to_change_or_delete_an_entry(runtime, db, engine_name):
    if engine_name != "postgresql":
        pytest.skip("the trigger is PostgreSQL's")
    write(db, 2)
    for statements in (
        ["UPDATE audit_entries SET action = 'x' WHERE seq = 1"],
        ["DELETE FROM audit_entries WHERE seq = 1"],
        # the prune command's permission reaches entries older than 180 days only
        ["SET LOCAL e_rescue.audit_prune = 'on'", "DELETE FROM audit_entries WHERE seq = 1"],
    ):
        with pytest.raises(DBAPIError, match="append-only"), runtime.engine.begin() as conn:
            for statement in statements:
                conn.execute(text(statement))
    assert db.scalar(select(func.count()).select_from(AuditEntry)) == 2


def test_pruning_past_retention_keeps_the_chain_verifiable(db, runtime, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    write(db, 4, days_ago=200, action="old")
    write(db, 2, days_ago=10, action="young")
    result = CliRunner().invoke(main, ["audit", "prune"])
    assert result.exit_code == 0, result.output
    assert "pruned 4 entries older than 180 days" in result.output
    db.expire_all()
    assert db.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all() == [
        "young",
        "young",
        "audit.pruned",
    ]
    head = db.get(AuditChain, 1)
    assert head.first_seq == 5
    report = verify(db, runtime)
    assert report.ok and report.checked == 3
    again = CliRunner().invoke(main, ["audit", "prune"])
    assert "pruned 0 entries" in again.output


def test_pruning_in_batches_resumes_where_it_stopped(db, runtime):
    write(db, 5, days_ago=200)
    key, now = runtime.config.audit_chain_key_bytes, clock.now()
    assert audit_chain.prune(db, key=key, now=now, keep_days=180, batch=2) == 2
    db.commit()
    assert verify(db, runtime).ok
    while audit_chain.prune(db, key=key, now=now, keep_days=180, batch=2):
        db.commit()
    db.commit()
    report = verify(db, runtime)
    assert report.ok and report.checked == 1  # the audit.pruned entry


def test_fewer_than_180_days_is_refused(db, runtime):
    with pytest.raises(Exception, match="180"):
        audit_chain.prune(db, key=b"k", now=clock.now(), keep_days=90)


def test_the_trail_exports_as_json_lines_from_a_given_seq(db, database_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", database_url)
    write(db, 3)
    result = CliRunner().invoke(main, ["audit", "export", "--after", "1"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line["seq"] for line in lines] == [2, 3]
    assert lines[0]["detail"] == {"i": 1, "note": "说明"} and lines[0]["hash"]


def test_the_audit_administrators_reads_are_audited(client, staff_login, db):
    auditor = staff_login(role="audit_admin")
    assert client.get("/api/v1/audit?action=lead.", headers=auditor.headers).status_code == 200
    read = db.scalar(select(AuditEntry).where(AuditEntry.action == "audit.read"))
    assert read.actor_id == auditor.user_id and read.detail["filters"] == {"action": "lead."}
