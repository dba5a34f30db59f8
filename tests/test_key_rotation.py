"""Key rotation re-keys the lookup hashes without losing a match (services/rotation.py).

People recorded under the old key (a hotline lead with ID number and phone, a roster entry, a
department file's leads, an application) are found by whole-ID search, phone search, feed
matching (the same file again, the roster, the once-per-period ledger) and the refusal of a
second application: half-way through a rotation, after it, and once the old key is removed
from FIELD_ENCRYPTION_KEY. A rotation stopped half-way resumes where it stopped."""

from __future__ import annotations

import base64
import itertools
from dataclasses import dataclass

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from server.models import (
    AidGrant,
    Application,
    FamilyMember,
    Lead,
    LeadEvidence,
    RosterEntry,
    RuleLedger,
)
from server.services.kernel import rotation
from server.services.kernel.pii import PersonalData
from tests.builders import make_id_number
from tests.builders.applications import application_body, file, photo_id, village, with_applicant
from tests.feedfiles import OOP_HEADER, csv_bytes, upload, xlsx

NEW_KEY = base64.urlsafe_b64encode(b"n" * 32).decode()
ROSTER_HEADER = ["姓名", "身份证号", "救助类别", "批准日期"]
ANNUAL_HEADER = ["姓名", "身份证号", "年度", "年度累计个人负担合规费用"]


@dataclass
class People:
    reported: str  # a hotline lead with ID number and phone
    phone: str
    on_roster: str
    from_feed: str
    applicant: str
    oop_file: bytes
    roster_file: bytes


def _oop_row(name: str, id_number: str, amount: int) -> list:
    return [1, name, id_number, "博山区医院", "2026-03-05", "2026-03-15", amount]


@pytest.fixture
def center(staff_login):
    return staff_login(role="center_staff")


@pytest.fixture
def insurer(staff_login):
    return staff_login(role="department_staff", department="medical_insurance")


@pytest.fixture
def alice(client, resident_login, db):
    village(db)
    return resident_login("alice")


@pytest.fixture
def people(client, center, insurer, alice) -> People:
    """Everything made under the old (the test configuration's) key."""
    p = People(
        reported=make_id_number(),
        phone="13905330001",
        on_roster=make_id_number(),
        from_feed=make_id_number(),
        applicant=make_id_number(),
        oop_file=b"",
        roster_file=b"",
    )
    report = {
        "channel": "hotline",
        "name": "韩梅",
        "summary": "邻居反映独居老人生活困难",
        "town": "chengdong",
        "id_number": p.reported,
        "phone": p.phone,
    }
    assert client.post("/api/v1/leads", json=report, headers=center.headers).status_code == 201
    p.roster_file = csv_bytes([ROSTER_HEADER, ["赵大", p.on_roster, "农村低保", "2025-01-10"]])
    body = upload(client, center, "civil_affairs_new", p.roster_file, "roster.csv").get_json()
    assert body["result"]["roster_added"] == 1
    p.oop_file = xlsx(
        [OOP_HEADER, _oop_row("赵大", p.on_roster, 32400), _oop_row("钱二", p.from_feed, 30000)]
    )
    body = upload(client, insurer, "insurance_oop", p.oop_file).get_json()
    assert body["result"]["leads_created"] == 2, body
    annual = xlsx([ANNUAL_HEADER, ["钱二", p.from_feed, "2026", 42000]])
    body = upload(client, insurer, "insurance_annual_oop", annual).get_json()
    assert body["result"]["leads_updated"] == 1, body
    application = with_applicant(
        application_body(
            photos=[photo_id(client, alice)],
            household=[{"name": "李四", "relation": "配偶", "id_number": make_id_number()}],
        ),
        id_number=p.applicant,
    )
    assert file(client, alice, application).status_code == 201
    return p


def _search(client, login, **by: str) -> list[int]:
    resp = client.post("/api/v1/leads/search", json=by, headers=login.headers)
    assert resp.status_code == 200, resp.get_json()
    return [item["id"] for item in resp.get_json()["items"]]


def everyone_is_found(client, db, center, insurer, alice, p: People) -> None:
    """Each way a person is matched finds the people made before the rotation, and nothing
    is opened twice."""
    db.expire_all()
    leads_before = db.scalar(select(func.count()).select_from(Lead))
    for id_number in (p.reported, p.on_roster, p.from_feed, p.applicant):
        assert len(_search(client, center, id_number=id_number)) == 1, id_number
    assert _search(client, center, phone=p.phone) == _search(client, center, id_number=p.reported)
    assert _search(client, center, phone=f"+86 {p.phone}")  # one number with or without +86
    # The same department file again: both rows known (no evidence, no lead), the roster
    # person still recognised.
    body = upload(client, insurer, "insurance_oop", p.oop_file).get_json()
    assert body["result"]["leads_created"] == 0 and body["result"]["duplicates"] == 2, body
    # A higher yearly figure for the same year: the rule raised it already (the ledger).
    annual = xlsx([ANNUAL_HEADER, ["钱二", p.from_feed, "2026", 52000]])
    body = upload(client, insurer, "insurance_annual_oop", annual).get_json()
    assert body["result"]["already_covered"] == 1 and body["result"]["leads_created"] == 0
    body = upload(client, center, "civil_affairs_new", p.roster_file, "roster.csv").get_json()
    assert body["result"]["roster_updated"] == 1 and body["result"]["roster_added"] == 0
    # The applicant's second application of the same kind is refused, naming the first.
    again = with_applicant(
        application_body(photos=[photo_id(client, alice)]), id_number=p.applicant
    )
    resp = file(client, alice, again)
    assert resp.status_code == 409 and resp.get_json()["code"] == "application_open"
    # A new report about the hotline lead's person lands on that lead.
    report = {
        "channel": "hotline",
        "name": "韩梅",
        "summary": "再次来电反映",
        "town": "chengdong",
        "id_number": p.reported,
    }
    assert client.post("/api/v1/leads", json=report, headers=center.headers).status_code == 201
    db.expire_all()
    assert db.scalar(select(func.count()).select_from(Lead)) == leads_before
    assert db.scalar(select(func.count()).select_from(RosterEntry)) == 1


def _hash_columns(db) -> list[tuple[str, str]]:
    """(table.column, value) of every person or phone hash stored."""
    found = []
    for table, column in {*rotation.PERSON_HASHES, ("leads", "phone_hash")}:
        col = rotation._table(table).c[column]
        found += [(f"{table}.{column}", v) for v in db.scalars(select(col).where(col.is_not(None)))]
    return found


def test_rekeyed_lookups_match_mid_rotation_after_it_and_without_the_old_key(
    client, db, runtime, center, insurer, alice, people, monkeypatch
):
    old_spec = runtime.config.field_encryption_key
    old = runtime.pii
    both = PersonalData.from_spec(f"k2:{NEW_KEY},{old_spec}")
    monkeypatch.setattr(runtime, "pii", both)
    with runtime.session_factory() as s:
        total = sum(rotation.left_to_rotate(s, both).values())
    assert total > 10
    # (a) half-way: half the people's ID numbers re-keyed (each batch committed), the others
    # and the phone still under the old key
    steps = rotation.rotate(runtime.session_factory, both, batch=1)
    for column, done in steps:
        if column == "leads.id_number_enc" and done == 2:
            break
    with runtime.session_factory() as s:
        left = sum(rotation.left_to_rotate(s, both).values())
        stored = {v for _, v in _hash_columns(s)}
    assert 0 < left < total
    ids = (people.reported, people.on_roster, people.from_feed, people.applicant)
    assert {old.hash(v) for v in ids} & stored and {both.hash(v) for v in ids} & stored
    assert old.hash(people.phone) in stored
    everyone_is_found(client, db, center, insurer, alice, people)
    # (b) the rest
    for _ in steps:
        pass
    with runtime.session_factory() as s:
        assert sum(rotation.left_to_rotate(s, both).values()) == 0
        assert rotation.keys_in_use(s, both)[old.cipher.current_kid] == 0
        assert rotation.leftovers(s) == {"aid_grants.id_hash": 0, "rule_ledger.person_hash": 0}
    everyone_is_found(client, db, center, insurer, alice, people)
    # Every stored hash is the new key's (none is the old key's hash of anyone we hold).
    new_only = PersonalData.from_spec(f"k2:{NEW_KEY}")
    db.expire_all()
    held = {
        old.hash(v) for v in (people.reported, people.on_roster, people.from_feed, people.applicant)
    } | {old.hash(people.phone)}
    assert not {v for _, v in _hash_columns(db)} & held
    ledger = db.scalar(select(RuleLedger.person_hash))
    assert ledger == new_only.hash(people.from_feed)
    lead = db.scalar(select(Lead).where(Lead.person_hash == new_only.hash(people.reported)))
    assert lead is not None and lead.phone_hash == new_only.hash(people.phone)
    # (c) the old key removed
    monkeypatch.setattr(runtime, "pii", new_only)
    everyone_is_found(client, db, center, insurer, alice, people)
    db.expire_all()
    for row in db.scalars(select(LeadEvidence.reporter_phone_enc)):
        assert row is None or new_only.open(row)
    for member in db.scalars(select(FamilyMember)):
        if member.id_number_enc:
            assert member.id_hash == new_only.hash(new_only.open(member.id_number_enc))
    for application in db.scalars(select(Application)):
        assert application.id_hash == new_only.hash(new_only.open(application.id_number_enc))
        (member,) = application.household  # sealed inside JSON: re-sealed too
        assert member["id_number_enc"].startswith("k2:") and new_only.open(member["id_number_enc"])
    assert db.scalar(select(func.count()).select_from(AidGrant)) == 0  # (none decided here)


def test_an_interrupted_rotation_resumes_where_it_stopped(
    client, db, runtime, center, insurer, alice, people, monkeypatch, database_url
):
    from server.cli import main

    old_spec = runtime.config.field_encryption_key
    new_spec = f"k2:{NEW_KEY},{old_spec}"
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", new_spec)
    real, calls = rotation.rotate_batch, itertools.count(1)

    def dies_on_the_fourth_batch(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        if next(calls) == 4:
            raise RuntimeError("the operator's session was cut")
        return real(*args, **kwargs)

    monkeypatch.setattr(rotation, "rotate_batch", dies_on_the_fourth_batch)
    cut = CliRunner().invoke(main, ["rotate-keys", "--batch", "1"])
    assert cut.exit_code != 0 and "done;" not in cut.output
    committed = cut.output.count("\n  ")  # a progress line per committed batch
    assert committed >= 1
    monkeypatch.setattr(rotation, "rotate_batch", real)
    both = PersonalData.from_spec(new_spec)
    with runtime.session_factory() as s:
        left = rotation.left_to_rotate(s, both)
    total = int(cut.output.split(": ", 1)[1].split(" values", 1)[0])
    assert sum(left.values()) == total - committed  # the batches before the cut stay done
    resumed = CliRunner().invoke(main, ["rotate-keys", "--batch", "1"])
    assert resumed.exit_code == 0, resumed.output
    assert f"re-sealing and re-keying under k2: {sum(left.values())} values" in resumed.output
    assert "done; 0 values left under older keys" in resumed.output
    assert "no longer seals or keys anything: it can be removed" in resumed.output
    monkeypatch.setattr(runtime, "pii", PersonalData.from_spec(f"k2:{NEW_KEY}"))
    everyone_is_found(client, db, center, insurer, alice, people)


def test_the_check_refuses_a_configuration_without_a_key_that_still_seals_or_keys_values(
    db, runtime, people, monkeypatch, database_url
):
    from server.cli import main

    old_spec = runtime.config.field_encryption_key
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", f"k2:{NEW_KEY}")  # the old key removed too soon
    early = CliRunner().invoke(main, ["rotate-keys", "--check"])
    assert early.exit_code == 1
    assert "key k1 is not listed but still seals values" in early.output
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", f"k2:{NEW_KEY},{old_spec}")
    assert CliRunner().invoke(main, ["rotate-keys"]).exit_code == 0
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", f"k2:{NEW_KEY}")
    late = CliRunner().invoke(main, ["rotate-keys", "--check"])
    assert late.exit_code == 0, late.output
    assert "every sealed value and lookup hash is under a listed key" in late.output


def test_every_keyed_hash_column_is_rekeyed_or_said_not_to_be_keyed():
    """A new `*_hash` column must be listed in rotation.HASHED / PERSON_HASHES (re-keyed) or
    NOT_KEYED, so none is left keyed by a key that is about to be removed."""
    from server.models import Base

    listed = {f"{t}.{c}" for t, c in rotation.PERSON_HASHES} | {
        f"{t}.{h}" for t, h, _, _ in rotation.HASHED
    }
    found = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith("_hash") or column.name == "hash"
    }
    assert found - listed - rotation.NOT_KEYED == set()
    assert listed <= found


def test_rotate_keys_all_rekeys_hashes_the_last_listed_key_made_before_rows_followed_their_seal(
    db, runtime, monkeypatch, database_url
):
    """Before re-keying existed, the *last* listed key keyed every hash, so a row re-sealed by
    an earlier rotation can hold a new seal beside an old hash; `--all` re-keys those too."""
    from server import clock
    from server.cli import main
    from server.models import Channel
    from server.services.kernel.access import SYSTEM
    from server.services.leads.core import Signal, record_signal

    old_spec = runtime.config.field_encryption_key
    both = PersonalData.from_spec(f"k2:{NEW_KEY},{old_spec}")
    old = runtime.pii
    person = make_id_number()
    record_signal(  # sealed under k2 (an earlier rotation), hashed under k1 (the last key)
        db,
        Signal(
            channel=Channel.HOTLINE,
            name="老王",
            summary="热线来电",
            dedup_key="legacy-1",
            person_hash=old.hash(person),
            id_number_enc=both.seal(person),
        ),
        actor=SYSTEM,
        now=clock.now(),
    )
    db.add(
        RuleLedger(
            rule="annual_oop_40k",
            person_hash=old.hash(person),
            period="2026",
            created_at=clock.now(),
        )
    )
    db.commit()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", f"k2:{NEW_KEY},{old_spec}")
    plain = CliRunner().invoke(main, ["rotate-keys"])
    assert "under k2: 0 values" in plain.output  # nothing sealed under k1: not seen
    result = CliRunner().invoke(main, ["rotate-keys", "--all"])
    assert result.exit_code == 0, result.output
    assert "leads.id_number_enc: 1" in result.output
    db.expire_all()
    assert db.scalar(select(Lead.person_hash)) == both.hash(person)
    assert db.scalar(select(RuleLedger.person_hash)) == both.hash(person)


def test_a_person_stored_twice_under_both_keys_is_left_and_named_and_the_rotation_ends(
    db, runtime, monkeypatch, database_url
):
    """Two open leads of one person, one under each key (made by a path that sought only one
    hash): re-keying the older would break the one-open-lead index. It is left as it was and
    named, the rest is rotated, and the run ends (it does not pick the same row forever)."""
    from server import clock
    from server.cli import main
    from server.models import Channel
    from server.services.kernel.access import SYSTEM
    from server.services.leads.core import Signal, record_signal

    old_spec = runtime.config.field_encryption_key
    old, both = runtime.pii, PersonalData.from_spec(f"k2:{NEW_KEY},{old_spec}")
    twice, once = make_id_number(), make_id_number()
    for pii, person, key in ((old, twice, "a"), (both, twice, "b"), (old, once, "c")):
        record_signal(
            db,
            Signal(
                channel=Channel.HOTLINE,
                name="老李",
                summary="热线来电",
                dedup_key=f"twice-{key}",
                person_hash=pii.hash(person),
                person_hashes=(pii.hash(person),),
                id_number_enc=pii.seal(person),
            ),
            actor=SYSTEM,
            now=clock.now(),
        )
    db.commit()
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", f"k2:{NEW_KEY},{old_spec}")
    result = CliRunner().invoke(main, ["rotate-keys", "--batch", "1"])
    assert result.exit_code == 0, result.output
    first = db.scalar(select(Lead.id).where(Lead.person_hash == old.hash(twice)))
    assert f"leads.id_number_enc of row {first} was left under the old key" in result.output
    assert "done; 1 values left under older keys" in result.output
    assert "keep k1 listed" in result.output
    db.expire_all()
    assert db.scalar(select(func.count()).where(Lead.person_hash == both.hash(once))) == 1


def test_a_lead_closed_before_the_rotation_is_not_reopened_beside_its_newer_lead(
    client, db, runtime, center, monkeypatch
):
    """During a re-keying window the person's newer lead is keyed differently from the closed
    one, so the one-open-lead index cannot tell; the link between them does."""
    person = make_id_number()
    report = {"channel": "hotline", "name": "韩梅", "summary": "来电", "town": "chengdong"}
    first = client.post(
        "/api/v1/leads", json={**report, "id_number": person}, headers=center.headers
    )
    old_id = first.get_json()["lead"]["id"]
    dismissed = client.post(
        f"/api/v1/leads/{old_id}/dismiss", json={"reason": "out_of_scope"}, headers=center.headers
    )
    assert dismissed.status_code == 200, dismissed.get_json()
    both = PersonalData.from_spec(f"k2:{NEW_KEY},{runtime.config.field_encryption_key}")
    monkeypatch.setattr(runtime, "pii", both)
    second = client.post(
        "/api/v1/leads", json={**report, "id_number": person}, headers=center.headers
    )
    new_id = second.get_json()["lead"]["id"]
    assert new_id != old_id
    db.expire_all()
    assert db.get(Lead, new_id).previous_lead_id == old_id
    assert db.get(Lead, new_id).person_hash != db.get(Lead, old_id).person_hash
    resp = client.post(f"/api/v1/leads/{old_id}/reopen", json={}, headers=center.headers)
    assert resp.status_code == 409 and resp.get_json()["code"] == "person_has_open_lead"
    assert str(new_id) in resp.get_json()["message"]


def test_undoing_a_merge_after_the_rotation_takes_back_the_phone_it_filled(
    client, db, runtime, center, monkeypatch
):
    """A merge records the phone it filled in (sealed, with its hash) to take it back on undo;
    the rotation re-seals and re-keys that record with the lead, so undo still finds it."""
    report = {"channel": "hotline", "summary": "来电", "town": "chengdong"}
    with_id = client.post(
        "/api/v1/leads",
        json={**report, "name": "韩梅", "id_number": make_id_number()},
        headers=center.headers,
    ).get_json()["lead"]["id"]
    by_phone = client.post(
        "/api/v1/leads",
        json={**report, "name": "韩梅", "phone": "13905330002"},
        headers=center.headers,
    ).get_json()["lead"]["id"]
    merged = client.post(
        f"/api/v1/leads/{by_phone}/merge", json={"into_lead_id": with_id}, headers=center.headers
    )
    assert merged.status_code == 200, merged.get_json()
    both = PersonalData.from_spec(f"k2:{NEW_KEY},{runtime.config.field_encryption_key}")
    for _ in rotation.rotate(runtime.session_factory, both, batch=10):
        pass
    new_only = PersonalData.from_spec(f"k2:{NEW_KEY}")
    monkeypatch.setattr(runtime, "pii", new_only)
    db.expire_all()
    target = db.get(Lead, with_id)
    assert target.phone_hash == new_only.hash("13905330002")
    undone = client.post(f"/api/v1/leads/{by_phone}/unmerge", headers=center.headers)
    assert undone.status_code == 200, undone.get_json()
    db.expire_all()
    target = db.get(Lead, with_id)
    assert target.phone_hash is None and target.phone_enc is None
