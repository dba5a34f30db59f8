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
        """Keyed hash for exact-match lookups and joins (ID numbers, phones): HMAC-SHA256 (or
        HMAC-SM3, by the oldest key), hex, the same as `crypto.keyed_hash` with the derived
        key."""
        return self._hmac.hex(normalised_value)
