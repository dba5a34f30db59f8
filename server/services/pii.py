"""Sealing and hashing personal data (ID numbers, phone numbers, WeChat session keys)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field

from server.services.crypto import Aead, FieldCipher, KeyedHash, aead_for


@dataclass
class PersonalData:
    cipher: FieldCipher
    _hmac_key: bytes = field(init=False, repr=False)
    # Built once: a department file hashes and seals up to hundreds of thousands of values, and
    # building the HMAC key schedule or the cipher's key schedule per value doubles their cost.
    _hmac: KeyedHash = field(init=False, repr=False)
    _aead: Aead = field(init=False, repr=False)
    _kid: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._hmac_key = self.cipher.hash_key()
        self._hmac = KeyedHash(self._hmac_key, sm3=self.cipher.hash_algorithm == "HMAC-SM3")
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

    def hash(self, normalised_value: str) -> str:
        """Keyed hash for exact-match lookups and joins (ID numbers, phones): HMAC-SHA256 (or
        HMAC-SM3, by the oldest key), hex, the same as `crypto.keyed_hash` with the derived
        key."""
        return self._hmac.hex(normalised_value)
