"""Feed settings and punctuality through the API; the CLI import; set-based matching."""

from __future__ import annotations

from datetime import timedelta

from click.testing import CliRunner
from sqlalchemy import event, func, select

from server import clock
from server.models import AuditEntry, FeedBatch, Lead, LeadEvidence
from server.services.feeds.batches import import_file
from server.services.kernel.access import SYSTEM
from tests.builders import error_code, make_id_number
from tests.feedfiles import OOP_HEADER, csv_bytes, upload, xlsx


def _oop(name, person, amount):
    return [1, name, person, "博山区医院", "2026-03-05", "2026-03-15", amount]


def test_the_system_administrator_adds_column_aliases_and_the_next_file_with_them_is_read(
    client, staff_login, db
):
    center = staff_login(role="center_staff")
    admin = staff_login(role="system_admin")
    rows = [
        ["参保人", "证件号码", "入院日期", "统筹外自付"],
        ["甲", make_id_number(), "2026-03-05", 30000],
    ]
    refused = upload(client, center, "insurance_oop", csv_bytes(rows), "a.csv")
    assert refused.status_code == 422
    resp = client.patch(
        "/api/v1/feeds/insurance_oop/settings",
        headers=admin.headers,
        json={"column_aliases": {"name": ["参保人"], "oop": ["统筹外自付"]}},
    )
    assert resp.status_code == 200, resp.get_json()
    name = next(c for c in resp.get_json()["columns"] if c["field"] == "name")
    assert name["extra_aliases"] == ["参保人"] and "姓名" in name["aliases"]
    accepted = upload(client, center, "insurance_oop", csv_bytes(rows), "a.csv")
    assert accepted.status_code == 201
    assert accepted.get_json()["result"]["leads_created"] == 1
    audit = db.scalar(select(AuditEntry).where(AuditEntry.action == "feed.settings_changed"))
    assert audit.detail["new"]["column_aliases"]["oop"] == ["统筹外自付"]


def test_the_system_administrator_changes_the_threshold_and_can_reset_it(client, staff_login):
    center = staff_login(role="center_staff")
    admin = staff_login(role="system_admin")
    url = "/api/v1/feeds/insurance_oop/settings"
    body = client.patch(url, headers=admin.headers, json={"threshold": "30000"}).get_json()
    assert body["threshold"] == "30000.00" and body["default_threshold"] == "20000"
    rows = [OOP_HEADER, _oop("甲", make_id_number(), 25000)]
    result = upload(client, center, "insurance_oop", xlsx(rows)).get_json()["result"]
    assert result["below_threshold"] == 1 and result["leads_created"] == 0
    body = client.patch(url, headers=admin.headers, json={"threshold": None}).get_json()
    assert body["threshold"] == "20000"


def test_settings_refuse_unknown_columns_aliases_of_another_column_and_thresholds_without_one(
    client, staff_login
):
    center = staff_login(role="system_admin")
    url = "/api/v1/feeds/insurance_oop/settings"
    resp = client.patch(url, headers=center.headers, json={"column_aliases": {"nope": ["x"]}})
    assert resp.status_code == 422 and error_code(resp) == "feed_aliases_invalid"
    resp = client.patch(
        url, headers=center.headers, json={"column_aliases": {"name": ["证件号码"]}}
    )
    assert resp.status_code == 422
    resp = client.patch(
        "/api/v1/feeds/fire/settings", headers=center.headers, json={"threshold": 1}
    )
    assert resp.status_code == 422 and error_code(resp) == "feed_has_no_threshold"


def test_only_the_system_administrator_changes_settings_and_department_staff_read_their_own(
    client, staff_login
):
    insurer = staff_login(role="department_staff", department="medical_insurance")
    url = "/api/v1/feeds/insurance_oop/settings"
    assert client.get(url, headers=insurer.headers).status_code == 200
    assert client.patch(url, headers=insurer.headers, json={"threshold": 1}).status_code == 403
    center = staff_login(role="center_staff")
    assert client.patch(url, headers=center.headers, json={"threshold": 1}).status_code == 403
    assert client.get("/api/v1/feeds/fire/settings", headers=insurer.headers).status_code == 404
    town = staff_login(role="town_staff")
    assert client.get(url, headers=town.headers).status_code == 403


def test_the_feed_list_shows_each_feeds_last_batch_next_due_date_and_state(client, staff_login, db):
    center = staff_login(role="center_staff")
    insurer = staff_login(role="department_staff", department="medical_insurance")
    batch = upload(
        client, insurer, "insurance_oop", xlsx([OOP_HEADER, _oop("甲", make_id_number(), 30000)])
    ).get_json()
    items = {
        f["code"]: f
        for f in client.get("/api/v1/feeds", headers=center.headers).get_json()["items"]
    }
    assert len(items) == 12
    oop = items["insurance_oop"]
    assert oop["last_batch"]["id"] == batch["id"]
    assert oop["department_name"] == "区医保分局" and oop["due_rule"] == "每月5日前报送上月数据"
    assert oop["state"] in {"on_time", "due_soon"} and oop["next_due"] is not None
    never = items["hospital_oop"]
    assert never["state"] == "never_sent" and never["last_batch"] is None
    # A monthly batch that arrived two months ago: late, counted in working days.
    old = db.get(FeedBatch, batch["id"])
    old.created_at = clock.now() - timedelta(days=70)
    db.commit()
    oop = next(
        f
        for f in client.get("/api/v1/feeds", headers=center.headers).get_json()["items"]
        if f["code"] == "insurance_oop"
    )
    assert oop["state"] == "late" and oop["late_by_working_days"] > 0
    assert oop["state_label"].startswith("逾期")


def test_import_feed_command_imports_a_file_with_a_progress_bar(tmp_path, monkeypatch, config, db):
    monkeypatch.setenv("DATABASE_URL", config.database_url)
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", config.field_encryption_key)
    path = tmp_path / "oop.xlsx"
    path.write_bytes(
        xlsx([OOP_HEADER, *[_oop(f"人{i}", make_id_number(), 30000) for i in range(3)]])
    )
    from server.cli import main

    result = CliRunner().invoke(main, ["import-feed", "insurance_oop", str(path)])
    assert result.exit_code == 0, result.output
    assert "leads created 3" in result.output and "insurance_oop" in result.output
    assert db.scalar(select(func.count()).select_from(Lead)) == 3
    bad = tmp_path / "note.xlsx"
    bad.write_text("not a spreadsheet")
    refused = CliRunner().invoke(main, ["import-feed", "insurance_oop", str(bad)])
    assert refused.exit_code != 0 and "Excel" in refused.output


def test_matching_is_set_based_the_statements_per_chunk_do_not_grow_with_its_rows(
    runtime, db, tmp_path
):
    """10 rows or 400 rows in a chunk: the same number of SQL statements (no query per row)."""
    engine = runtime.engine
    counts = []
    for size in (10, 400):
        people = [make_id_number(birth=f"19{50 + size % 40}0101", seq=None) for _ in range(size)]
        path = tmp_path / f"f{size}.csv"
        rows = [OOP_HEADER, *[_oop(f"人{i}", p, 30000 + i) for i, p in enumerate(people)]]
        path.write_bytes(csv_bytes(rows))
        statements = []

        def count(*_args, statements=statements):
            statements.append(1)

        event.listen(engine, "before_cursor_execute", count)
        try:
            import_file(
                db,
                "insurance_oop",
                path,
                pii=runtime.pii,
                actor=SYSTEM,
                now=clock.now(),
                checkpoint=lambda _b: db.flush(),
                chunk_rows=1000,
            )
        finally:
            event.remove(engine, "before_cursor_execute", count)
        db.commit()
        counts.append(len(statements))
    assert counts[0] == counts[1], counts


def _import(runtime, path, chunk_rows=None):
    with runtime.session_factory() as session:
        batch = import_file(
            session,
            "insurance_oop",
            path,
            pii=runtime.pii,
            actor=SYSTEM,
            now=clock.now(),
            checkpoint=lambda _b: session.commit(),
            chunk_rows=chunk_rows,
        )
        session.commit()
        return batch.result


def test_two_overlapping_files_imported_at_once_give_one_lead_per_person(runtime, db, tmp_path):
    """Two workers, two files sharing 100 of their 200 people (same rows): each person ends up
    with one open lead and each row with one piece of evidence, whoever got there first."""
    import threading

    people = [make_id_number(birth="19700101", seq=None) for _ in range(300)]
    rows = [_oop(f"人{i}", p, 30000 + i) for i, p in enumerate(people)]
    paths = []
    for name, part in (("a", rows[:200]), ("b", rows[100:])):
        paths.append(tmp_path / f"{name}.csv")
        paths[-1].write_bytes(csv_bytes([OOP_HEADER, *part]))
    results, errors = [], []

    def work(path):
        try:
            results.append(_import(runtime, path, chunk_rows=20))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sum(r["leads_created"] for r in results) == 300
    assert sum(r["duplicates"] for r in results) == 100
    assert db.scalar(select(func.count()).select_from(Lead).where(Lead.is_open)) == 300
    assert db.scalar(select(func.count(func.distinct(Lead.person_hash)))) == 300
    assert db.scalar(select(func.count()).select_from(LeadEvidence)) == 300


def test_a_lead_another_import_opened_meanwhile_is_joined_not_duplicated(
    runtime, db, tmp_path, monkeypatch
):
    """The lookup missed a lead that another import opened (it committed between our lookup and
    our insert): on PostgreSQL the COPY meets the unique index, gives way to INSERT … ON
    CONFLICT, and the row lands in that lead. (SQLite's write lock rules the race out.)"""
    from server.services.feeds.bulk import Bulk

    if runtime.engine.dialect.name != "postgresql":
        return
    taken, fresh = make_id_number(), make_id_number()
    first = tmp_path / "first.csv"
    first.write_bytes(csv_bytes([OOP_HEADER, _oop("甲", taken, 30000)]))
    _import(runtime, first)
    original, calls = Bulk.open_leads, []

    def blind_once(self, hashes):
        calls.append(list(hashes))
        return {} if len(calls) == 1 else original(self, hashes)

    monkeypatch.setattr(Bulk, "open_leads", blind_once)
    second = tmp_path / "second.csv"
    rows = [OOP_HEADER, _oop("甲", taken, 45000), _oop("乙", fresh, 30000)]
    second.write_bytes(csv_bytes(rows))
    result = _import(runtime, second)
    assert result["leads_created"] == 1 and result["leads_updated"] == 1
    assert len(calls) == 2 and calls[1] == [runtime.pii.hash(taken)]
    assert db.scalar(select(func.count()).select_from(Lead)) == 2
    lead = db.scalar(select(Lead).where(Lead.person_hash == runtime.pii.hash(taken)))
    assert len(lead.evidence) == 2
