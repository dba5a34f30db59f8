"""Sealing and hashing personal data (ID numbers, phone numbers, WeChat session keys)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field

from server.services.kernel.crypto import Aead, FieldCipher, KeyConfigError, KeyedHash, aead_for

#: The first bytes of a sealed file (format version 1).
SEALED_MAGIC = b"ERSEAL1\x00"


@dataclass
class PersonalData:
    cipher: FieldCipher
    # Built once: a department file hashes and seals up to hundreds of thousands of values, and
    # building the HMAC key schedule or the cipher's key schedule per value doubles their cost.
    _hmac: KeyedHash = field(init=False, repr=False)
    #: One keyed hash per listed key, the current key's first (lookups match under each).
    _hmacs: dict[str, KeyedHash] = field(init=False, repr=False)
    _aead: Aead = field(init=False, repr=False)
    _kid: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        cipher = self.cipher
        self._hmacs = {
            kid: KeyedHash(cipher.hash_key(kid), sm3=cipher.hash_algorithm_of(kid) == "HMAC-SM3")
            for kid in cipher.lookup_kids
        }
        self._hmac = self._hmacs[cipher.hash_kid]
        self._kid, key = self.cipher.keys[0]
        self._aead = aead_for(self._kid, key)

    @classmethod
    def from_spec(cls, spec: str) -> PersonalData:
        return cls(FieldCipher.from_spec(spec))

    def seal(self, value: str | None) -> str | None:
        """`FieldCipher.encrypt` (AES-256-GCM or SM4-GCM by the current key,
        `kid:base64(nonce|ct|tag)`, kid as associated data) with the cipher object kept."""
        if value is None:
            return None
        kid, nonce = self._kid, os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode(), kid.encode())
        return f"{kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, token: str | None) -> str | None:
        return None if token is None else self.cipher.decrypt(token)

    def seal_bytes(self, data: bytes) -> bytes:
        """A whole file sealed like a field (department uploads at rest): `SEALED_MAGIC`, the
        kid's length and the kid, then nonce | ciphertext | tag, the kid as associated data."""
        kid = self._kid.encode()
        nonce = os.urandom(12)
        return SEALED_MAGIC + bytes([len(kid)]) + kid + nonce + self._aead.encrypt(nonce, data, kid)

    def open_bytes(self, blob: bytes) -> bytes:
        """The file `seal_bytes` sealed, under whichever configured key sealed it."""
        if not blob.startswith(SEALED_MAGIC):
            raise ValueError("not a sealed file")
        at = len(SEALED_MAGIC)
        size = blob[at]
        kid = blob[at + 1 : at + 1 + size]
        key = dict(self.cipher.keys).get(kid.decode())
        if key is None:
            raise KeyConfigError(f"no key {kid.decode()!r} configured to open this file")
        body = blob[at + 1 + size :]
        return aead_for(kid.decode(), key).decrypt(body[:12], body[12:], kid)

    def hash(self, normalised_value: str) -> str:
        """The keyed hash to *store* for exact-match lookups and joins (ID numbers, phones):
        HMAC-SHA256 (or HMAC-SM3, by the current key), hex, the same as `crypto.keyed_hash`
        with the current key's derived key. To *find* a value, use `hashes`."""
        return self._hmac.hex(normalised_value)

    def hashes(self, normalised_value: str) -> tuple[str, ...]:
        """The value's keyed hash under every listed key, the current key's first: what a
        lookup compares with (`column.in_(pii.hashes(v))`), so a value hashed before a rotation
        is found until `rotate-keys` has re-keyed it and the old key is removed."""
        return tuple(mac.hex(normalised_value) for mac in self._hmacs.values())

    def hash_under(self, kid: str, normalised_value: str) -> str:
        return self._hmacs[kid].hex(normalised_value)

    def old_hashes(self, normalised_value: str) -> tuple[str, ...]:
        """The value's hash under every listed key but the current one (what re-keying
        replaces)."""
        return self.hashes(normalised_value)[1:]

    def hashes_of_sealed(self, token: str | None, fallback: str | None = None) -> tuple[str, ...]:
        """The lookup hashes of a sealed ID number (a row's `*_enc`), for comparing one row's
        person with another's while they may be keyed differently; `(fallback,)` (the row's
        stored hash) when nothing is sealed, `()` when neither is known."""
        if token is None:
            return () if fallback is None else (fallback,)
        found = self.hashes(self.cipher.decrypt(token))
        return found if fallback is None or fallback in found else (*found, fallback)
