"""国密: SM4-GCM field encryption and HMAC-SM3 lookups beside AES-256-GCM and HMAC-SHA256,
chosen per key by its id, checked against the standards' own test vectors."""

from __future__ import annotations

import base64

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes

from server.services.kernel.crypto import SM4GCM, FieldCipher, KeyConfigError, keyed_hash
from server.services.kernel.pii import PersonalData

AES_KEY = base64.urlsafe_b64encode(b"a" * 32).decode()
SM4_KEY = base64.urlsafe_b64encode(b"s" * 16).decode()
ID = "370304198001011234"


def test_sm4_gcm_gives_rfc_8998s_test_vector():
    key = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    nonce = bytes.fromhex("00001234567800000000ABCD")
    aad = bytes.fromhex("FEEDFACEDEADBEEFFEEDFACEDEADBEEFABADDAD2")
    plaintext = bytes.fromhex(
        "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCCCCCCCCCCCCCCDDDDDDDDDDDDDDDD"
        "EEEEEEEEEEEEEEEEFFFFFFFFFFFFFFFFEEEEEEEEEEEEEEEEAAAAAAAAAAAAAAAA"
    )
    sealed = SM4GCM(key).encrypt(nonce, plaintext, aad)
    assert sealed[:-16].hex().upper() == (
        "17F399F08C67D5EE19D0DC9969C4BB7D5FD46FD3756489069157B282BB200735"
        "D82710CA5C22F0CCFA7CBF93D496AC15A56834CBCF98C397B4024A2691233B8D"
    )
    assert sealed[-16:].hex().upper() == "83DE3541E4C2B58177E065A9BF7B62EC"
    assert SM4GCM(key).decrypt(nonce, sealed, aad) == plaintext


def test_sm4_gcm_refuses_a_changed_ciphertext():
    cipher = SM4GCM(b"k" * 16)
    sealed = bytearray(cipher.encrypt(b"n" * 12, b"secret", b"aad"))
    sealed[0] ^= 1
    with pytest.raises(InvalidTag):
        cipher.decrypt(b"n" * 12, bytes(sealed), b"aad")


def test_sm3_gives_gbt_32905s_test_vector():
    digest = hashes.Hash(hashes.SM3())
    digest.update(b"abc")
    assert digest.finalize().hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )


def test_aes_and_sm4_keys_work_side_by_side():
    """The key id records the algorithm: values sealed under either decrypt with both listed."""
    aes_sealed = FieldCipher.from_spec(f"k1:{AES_KEY}").encrypt(ID)
    both = FieldCipher.from_spec(f"sm4-2027:{SM4_KEY},k1:{AES_KEY}")
    sm4_sealed = both.encrypt(ID)
    assert aes_sealed.startswith("k1:") and sm4_sealed.startswith("sm4-2027:")
    assert both.decrypt(aes_sealed) == ID and both.decrypt(sm4_sealed) == ID
    back = FieldCipher.from_spec(f"k1:{AES_KEY},sm4-2027:{SM4_KEY}")
    assert back.decrypt(sm4_sealed) == ID and back.encrypt(ID).startswith("k1:")


def test_personal_data_seals_with_sm4_and_hashes_with_hmac_sm3_under_an_sm4_key():
    pii = PersonalData.from_spec(f"sm4-1:{SM4_KEY}")
    assert pii.cipher.hash_algorithm == "HMAC-SM3"
    sealed = pii.seal(ID)
    assert sealed.startswith("sm4-1:") and pii.open(sealed) == ID
    assert pii.hash(ID) == keyed_hash(pii.cipher.hash_key(), ID, sm3=True)
    assert pii.hash(ID) != keyed_hash(pii.cipher.hash_key(), ID)  # not SHA-256
    assert PersonalData.from_spec(f"k1:{AES_KEY}").cipher.hash_algorithm == "HMAC-SHA256"


def test_a_key_of_the_wrong_length_for_its_algorithm_is_refused():
    with pytest.raises(KeyConfigError, match="16 bytes"):
        FieldCipher.from_spec(f"sm4-1:{AES_KEY}")
    with pytest.raises(KeyConfigError, match="32 bytes"):
        FieldCipher.from_spec(f"k1:{SM4_KEY}")


# --- rotation ---------------------------------------------------------------------------------


def _seed_sealed(db, runtime, n: int = 3) -> list[str]:
    from server import clock
    from server.models import Channel
    from server.services.kernel.access import SYSTEM
    from server.services.leads.core import Signal, record_signal
    from tests.builders import make_id_number

    pii, ids = runtime.pii, []
    for i in range(n):
        id_number = make_id_number()
        record_signal(
            db,
            Signal(
                channel=Channel.HOTLINE,
                name=f"王{i}",
                summary="热线来电",
                dedup_key=f"rot-{i}",
                person_hash=pii.hash(id_number),
                id_number_enc=pii.seal(id_number),
                phone_enc=pii.seal(f"1380000{i:04d}"),
            ),
            actor=SYSTEM,
            now=clock.now(),
        )
        ids.append(id_number)
    db.commit()
    return ids


def test_rotate_keys_reseals_and_rekeys_every_value_from_aes_to_sm4_and_every_lookup_matches(
    db, runtime, database_url, monkeypatch
):
    from click.testing import CliRunner
    from sqlalchemy import select

    from server.cli import main
    from server.models import Lead

    ids = _seed_sealed(db, runtime, 5)
    old_spec = runtime.config.field_encryption_key
    new_spec = f"sm4-2027:{SM4_KEY},{old_spec}"
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("FIELD_ENCRYPTION_KEY", new_spec)
    result = CliRunner().invoke(main, ["rotate-keys", "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "re-sealing and re-keying under sm4-2027: 10 values" in result.output
    assert "leads.id_number_enc: 4 of 5" in result.output  # progress, batch by batch
    assert "0 values left" in result.output
    rotated = PersonalData.from_spec(new_spec)
    db.expire_all()
    leads = db.scalars(select(Lead).order_by(Lead.id)).all()
    assert all(lead.id_number_enc.startswith("sm4-2027:") for lead in leads)
    assert sorted(rotated.open(lead.id_number_enc) for lead in leads) == sorted(ids)
    assert "key k1 no longer seals or keys anything" in result.output
    only_new = PersonalData.from_spec(f"sm4-2027:{SM4_KEY}")
    assert only_new.cipher.hash_algorithm == "HMAC-SM3"
    for id_number in ids:  # re-keyed: HMAC-SM3 under the new key alone
        found = db.scalar(select(Lead.id).where(Lead.person_hash == only_new.hash(id_number)))
        assert found is not None
    again = CliRunner().invoke(main, ["rotate-keys"])
    assert "re-sealing and re-keying under sm4-2027: 0 values" in again.output
