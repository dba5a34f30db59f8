"""Sealing and hashing personal data (ID numbers, phone numbers, WeChat session keys)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from server.services.crypto import FieldCipher


@dataclass
class PersonalData:
    cipher: FieldCipher
    _hmac_key: bytes = field(init=False, repr=False)
    # Built once: a department file hashes and seals up to hundreds of thousands of values, and
    # building the HMAC key schedule or the AES key schedule per value doubles their cost.
    _hmac: hmac.HMAC = field(init=False, repr=False)
    _aead: AESGCM = field(init=False, repr=False)
    _kid: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._hmac_key = self.cipher.hash_key()
        self._hmac = hmac.new(self._hmac_key, digestmod=hashlib.sha256)
        self._kid, key = self.cipher.keys[0]
        self._aead = AESGCM(key)

    @classmethod
    def from_spec(cls, spec: str) -> PersonalData:
        return cls(FieldCipher.from_spec(spec))

    def seal(self, value: str | None) -> str | None:
        """`FieldCipher.encrypt` (AES-256-GCM, `kid:base64(nonce|ct|tag)`, kid as associated
        data) with the current key's cipher object kept."""
        if value is None:
            return None
        kid, nonce = self._kid, os.urandom(12)
        sealed = self._aead.encrypt(nonce, value.encode(), kid.encode())
        return f"{kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def open(self, token: str | None) -> str | None:
        return None if token is None else self.cipher.decrypt(token)

    def hash(self, normalised_value: str) -> str:
        """Keyed hash for exact-match lookups and joins (ID numbers, phones): HMAC-SHA256, hex,
        the same as `crypto.keyed_hash` with the derived key."""
        mac = self._hmac.copy()
        mac.update(normalised_value.encode())
        return mac.hexdigest()
