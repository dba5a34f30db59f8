"""ID numbers and phone numbers are never stored in clear text."""

from __future__ import annotations

from sqlalchemy import inspect, text

from server import clock
from server.models import Channel
from server.services.kernel.access import SYSTEM
from server.services.kernel.crypto import FieldCipher
from server.services.leads.core import Signal, record_signal
from tests.builders import make_id_number


def _dump_every_text_value(engine) -> str:
    chunks = []
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f"SELECT * FROM {table}")):
                chunks.extend(str(v) for v in row)
    return "\n".join(chunks)


def test_database_never_holds_an_id_or_phone_in_clear(runtime, db, client):
    id_number, phone = make_id_number(), "13912345678"
    pii = runtime.pii
    record_signal(
        db,
        Signal(
            channel=Channel.HOTLINE,
            name="测试",
            summary="热线",
            dedup_key="t1",
            person_hash=pii.hash(id_number),
            id_number_enc=pii.seal(id_number),
            phone_enc=pii.seal(phone),
            phone_hash=pii.hash(phone),
        ),
        actor=SYSTEM,
        now=clock.now(),
    )
    db.commit()
    dump = _dump_every_text_value(runtime.engine)
    assert pii.hash(id_number) in dump  # the row is really there
    assert id_number not in dump
    assert phone not in dump


def test_ciphertexts_carry_their_key_id_and_old_keys_still_decrypt():
    import base64

    old = base64.urlsafe_b64encode(b"o" * 32).decode()
    new = base64.urlsafe_b64encode(b"n" * 32).decode()
    sealed_with_old = FieldCipher.from_spec(f"k1:{old}").encrypt("370304198001011234")
    rotated = FieldCipher.from_spec(f"k2:{new},k1:{old}")
    assert sealed_with_old.startswith("k1:")
    assert rotated.decrypt(sealed_with_old) == "370304198001011234"
    assert rotated.encrypt("x").startswith("k2:")


def test_a_value_hashed_before_a_new_key_is_found_while_both_keys_are_listed():
    """New hashes follow the first key (the one that seals beside them); lookups match under
    every listed key, so a value hashed under the old key is still found until re-keyed."""
    import base64

    from server.services.kernel.pii import PersonalData

    old = base64.urlsafe_b64encode(b"o" * 32).decode()
    new = base64.urlsafe_b64encode(b"n" * 32).decode()
    before = PersonalData.from_spec(f"k1:{old}").hash("370304198001011234")
    both = PersonalData.from_spec(f"k2:{new},k1:{old}")
    assert both.hash("370304198001011234") != before
    assert both.hashes("370304198001011234") == (both.hash("370304198001011234"), before)
    assert both.old_hashes("370304198001011234") == (before,)
