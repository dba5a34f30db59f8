"""Applications: validated, sealed, idempotent, private to their filer, feeding one lead."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from server.models import Application, AuditEntry, Lead, Village
from tests.builders import error_code, make_id_number
from tests.builders.applications import (
    application_body,
    file,
    make_helper,
    on_behalf,
    photo_id,
    village,
    with_applicant,
)

# --- filing ---------------------------------------------------------------------------------


def test_resident_files_an_application(client, alice):
    resp = file(client, alice, application_body(photos=[photo_id(client, alice)]))
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "submitted" and body["channel"] == "miniprogram"
    assert body["timeline"][0]["title"] == "已提交申请，等待镇街受理"


def test_id_and_phone_are_sealed_and_shown_masked(client, alice, db):
    id_number = make_id_number()
    body = application_body(photos=[photo_id(client, alice)])
    resp = file(client, alice, with_applicant(body, id_number=id_number))
    shown = resp.get_json()
    assert shown["id_number"] == id_number[:6] + "********" + id_number[14:]
    assert shown["phone"] == "138****5678"
    row = db.get(Application, shown["id"])
    assert id_number not in row.id_number_enc and "13812345678" not in row.phone_enc
    listed = client.get("/api/v1/applications", headers=alice.headers).get_json()["items"][0]
    assert id_number not in str(listed) and "13812345678" not in str(listed)


def test_application_opens_or_joins_the_persons_one_lead(client, alice, db):
    id_number = make_id_number()
    for kind in ("dibao", "temporary"):
        body = application_body(photos=[photo_id(client, alice)], type=kind)
        body["temporary"] = {"what_happened": "房屋失火", "happened_on": "2026-11-01"}
        assert file(client, alice, with_applicant(body, id_number=id_number)).status_code == 201
    assert db.scalar(select(func.count()).select_from(Lead)) == 1
    leads = {a.lead_id for a in db.scalars(select(Application))}
    assert len(leads) == 1 and None not in leads


def test_full_width_digits_and_spaces_in_the_id_are_accepted(client, alice):
    plain = make_id_number()
    wide = " ".join(
        "".join(chr(0xFF10 + int(c)) if c.isdigit() else c for c in plain)[i : i + 6]
        for i in range(0, 18, 6)
    )
    body = with_applicant(application_body(photos=[photo_id(client, alice)]), id_number=wide)
    resp = file(client, alice, body)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["id_number"].endswith(plain[14:])


@pytest.mark.parametrize(
    ("id_number", "code"),
    [
        (make_id_number()[:17] + ("0" if make_id_number()[17] != "0" else "1"), None),
        ("370304198002301234", "id_birth_date"),
        ("370304800101123", "id_old_15_digit"),
    ],
    ids=["wrong_checksum", "impossible_birth_date", "old_15_digit"],
)
def test_invalid_id_numbers_are_refused_with_the_reason(client, alice, id_number, code):
    body = with_applicant(application_body(photos=[photo_id(client, alice)]), id_number=id_number)
    resp = file(client, alice, body)
    assert resp.status_code == 422
    assert error_code(resp) in ({code} if code else {"id_checksum", "id_birth_date"})
    assert resp.get_json()["errors"]["applicant.id_number"]


def test_wrong_checksum_is_refused(client, alice):
    good = make_id_number()
    bad = good[:17] + ("1" if good[17] != "1" else "2")
    body = with_applicant(application_body(photos=[photo_id(client, alice)]), id_number=bad)
    resp = file(client, alice, body)
    assert error_code(resp) == "id_checksum"
    assert "校验位" in resp.get_json()["message"]


@pytest.mark.parametrize("phone", ["23812345678", "1381234567", "138123456789", "abc"])
def test_phone_must_be_11_digits_starting_with_1(client, alice, phone):
    body = with_applicant(application_body(photos=[photo_id(client, alice)]), phone=phone)
    assert error_code(file(client, alice, body)) == "phone_format"


def test_reason_with_control_characters_is_refused(client, alice):
    body = application_body(photos=[photo_id(client, alice)], reason="生活困难\x1b[31m")
    assert error_code(file(client, alice, body)) == "text_invalid"


def test_reason_over_500_characters_is_refused(client, alice):
    body = application_body(photos=[photo_id(client, alice)], reason="难" * 501)
    assert file(client, alice, body).status_code == 422


def test_unknown_type_is_refused(client, alice):
    body = application_body(photos=[photo_id(client, alice)], type="housing")
    assert file(client, alice, body).status_code == 422


@pytest.mark.parametrize("count", [0, 10])
def test_one_to_nine_photos(client, alice, count):
    assert (
        file(client, alice, application_body(photos=list(range(1, count + 1)))).status_code == 422
    )


def test_photos_must_be_the_callers_own(client, alice, resident_login):
    bobs = photo_id(client, resident_login("bob"))
    resp = file(client, alice, application_body(photos=[bobs]))
    assert error_code(resp) == "photo_not_owned"


def test_medical_application_needs_its_hospital_stay(client, alice):
    photos = [photo_id(client, alice)]
    assert error_code(file(client, alice, application_body(photos=photos, type="medical"))) == (
        "medical_required"
    )
    medical = {
        "hospital": "博山区人民医院",
        "admission_date": "2026-10-01",
        "discharge_date": "2026-10-20",
        "total_cost": "56000.00",
        "out_of_pocket": "23000.00",
    }
    resp = file(client, alice, application_body(photos=photos, type="medical", medical=medical))
    assert resp.status_code == 201
    assert resp.get_json()["details"]["hospital"] == "博山区人民医院"


def test_temporary_application_needs_what_happened(client, alice):
    resp = file(client, alice, application_body(photos=[photo_id(client, alice)], type="temporary"))
    assert error_code(resp) == "temporary_required"


def test_village_must_belong_to_the_town(client, alice, db):
    village(db, code="bs-001", town_id=db.scalar(select(Village.town_id)) + 1)
    body = with_applicant(application_body(photos=[photo_id(client, alice)]), village="bs-001")
    assert error_code(file(client, alice, body)) == "village_not_found"


# --- idempotency ----------------------------------------------------------------------------


def test_idempotency_key_is_required(client, alice):
    resp = client.post(
        "/api/v1/applications",
        json=application_body(photos=[photo_id(client, alice)]),
        headers=alice.headers,
    )
    assert resp.status_code == 428
    assert error_code(resp) == "idempotency_key_required"


def test_same_key_and_body_replays_the_first_answer(client, alice, db):
    body = application_body(photos=[photo_id(client, alice)])
    first = file(client, alice, body, key="k-1")
    again = file(client, alice, body, key="k-1")
    assert again.status_code == 201
    assert again.get_json()["id"] == first.get_json()["id"]
    assert db.scalar(select(func.count()).select_from(Application)) == 1


def test_same_key_with_a_different_body_is_409(client, alice):
    body = application_body(photos=[photo_id(client, alice)])
    file(client, alice, body, key="k-1")
    resp = file(client, alice, {**body, "reason": "另一个原因"}, key="k-1")
    assert resp.status_code == 409
    assert error_code(resp) == "idempotency_conflict"


def test_keys_are_per_user(client, alice, resident_login):
    bob = resident_login("bob")
    assert (
        file(client, alice, application_body(photos=[photo_id(client, alice)]), key="k").status_code
        == 201
    )
    assert (
        file(client, bob, application_body(photos=[photo_id(client, bob)]), key="k").status_code
        == 201
    )


# --- reading and withdrawing ----------------------------------------------------------------


def test_list_is_mine_newest_first_and_paginated(client, alice, resident_login):
    ids = [
        file(client, alice, application_body(photos=[photo_id(client, alice)])).get_json()["id"]
        for _ in range(3)
    ]
    bob = resident_login("bob")
    file(client, bob, application_body(photos=[photo_id(client, bob)]))
    page = client.get("/api/v1/applications?per_page=2", headers=alice.headers).get_json()
    assert page["total"] == 3
    assert [a["id"] for a in page["items"]] == ids[::-1][:2]
    page2 = client.get("/api/v1/applications?per_page=2&page=2", headers=alice.headers).get_json()
    assert [a["id"] for a in page2["items"]] == [ids[0]]


def test_another_residents_application_is_404(client, alice, resident_login):
    app_id = file(client, alice, application_body(photos=[photo_id(client, alice)])).get_json()[
        "id"
    ]
    bob = resident_login("bob")
    assert client.get(f"/api/v1/applications/{app_id}", headers=bob.headers).status_code == 404
    resp = client.post(f"/api/v1/applications/{app_id}/withdraw", headers=bob.headers)
    assert resp.status_code == 404


def test_withdraw_while_undecided_adds_a_timeline_step(client, alice, db):
    app_id = file(client, alice, application_body(photos=[photo_id(client, alice)])).get_json()[
        "id"
    ]
    resp = client.post(f"/api/v1/applications/{app_id}/withdraw", headers=alice.headers)
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "withdrawn" and body["withdrawn_at"]
    assert [s["title"] for s in body["timeline"]] == ["已提交申请，等待镇街受理", "申请已撤回"]
    again = client.post(f"/api/v1/applications/{app_id}/withdraw", headers=alice.headers)
    assert again.status_code == 409 and error_code(again) == "not_withdrawable"


def test_every_state_change_is_audited(client, alice, db):
    app_id = file(client, alice, application_body(photos=[photo_id(client, alice)])).get_json()[
        "id"
    ]
    client.post(f"/api/v1/applications/{app_id}/withdraw", headers=alice.headers)
    actions = db.scalars(
        select(AuditEntry.action).where(
            AuditEntry.target_type == "application", AuditEntry.target_id == app_id
        )
    ).all()
    assert sorted(actions) == ["application.submitted", "application.withdrawn"]


def test_staff_cannot_file(client, staff_login, alice):
    assert file(client, staff_login(), application_body(photos=[1])).status_code == 403


# --- filing on behalf -----------------------------------------------------------------------


def test_helper_files_on_behalf_in_their_village(client, resident_login, db):
    helper = make_helper(db, resident_login("hank"))
    body = application_body(photos=[photo_id(client, helper)], on_behalf=on_behalf())
    resp = file(client, helper, body)
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["channel"] == "on_behalf"
    assert db.get(Application, resp.get_json()["id"]).on_behalf["witness_name"] == "王五"


def test_helper_of_village_a_filing_for_village_b_is_403(client, resident_login, db):
    helper = make_helper(db, resident_login("hank"), village_code="cd-001")
    village(db, code="cd-002")
    body = with_applicant(
        application_body(photos=[photo_id(client, helper)], on_behalf=on_behalf()), village="cd-002"
    )
    resp = file(client, helper, body)
    assert resp.status_code == 403
    assert error_code(resp) == "not_your_village"


def test_signed_form_consent_needs_a_photo_of_the_form(client, resident_login, db):
    helper = make_helper(db, resident_login("hank"))
    photos = [photo_id(client, helper)]
    body = application_body(photos=photos, on_behalf=on_behalf(consent_method="signed_form"))
    assert file(client, helper, body).status_code == 422
    body["on_behalf"]["consent_photo_id"] = photos[0]
    assert file(client, helper, body).status_code == 201


def test_verbal_consent_needs_a_witness(client, resident_login, db):
    helper = make_helper(db, resident_login("hank"))
    body = application_body(
        photos=[photo_id(client, helper)], on_behalf=on_behalf(witness_name=None)
    )
    assert file(client, helper, body).status_code == 422


def test_residents_cannot_file_on_behalf(client, alice):
    body = application_body(photos=[photo_id(client, alice)], on_behalf=on_behalf())
    assert file(client, alice, body).status_code == 422
