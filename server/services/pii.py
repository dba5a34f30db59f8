"""Sealing and hashing personal data (ID numbers, phone numbers, WeChat session keys)."""

from __future__ import annotations

from dataclasses import dataclass, field

from server.services.crypto import FieldCipher, keyed_hash


@dataclass
class PersonalData:
    cipher: FieldCipher
    _hmac_key: bytes = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._hmac_key = self.cipher.hash_key()

    @classmethod
    def from_spec(cls, spec: str) -> PersonalData:
        return cls(FieldCipher.from_spec(spec))

    def seal(self, value: str | None) -> str | None:
        return None if value is None else self.cipher.encrypt(value)

    def open(self, token: str | None) -> str | None:
        return None if token is None else self.cipher.decrypt(token)

    def hash(self, normalised_value: str) -> str:
        """Keyed hash for exact-match lookups and joins (ID numbers, phones)."""
        return keyed_hash(self._hmac_key, normalised_value)
