"""Protection of personal data at rest.

- `FieldCipher`: an AEAD per configured key, from `cryptography` (a well-kept, audited library;
  we write no cipher code): AES-256-GCM, or SM4-GCM (GB/T 32907 in GCM mode, RFC 8998) for a
  district that must pass 密评. The key id records the algorithm: an id starting with `sm4`
  (e.g. `sm4-2027`) is an SM4 key of 16 bytes, any other (`k1`) an AES-256 key of 32 bytes.
  Ciphertexts are `kid:base64(nonce|ct|tag)` with the kid as associated data, so keys and
  algorithms can rotate: the first configured key encrypts, every configured key decrypts.
- `keyed_hash`: a keyed hash of a normalised value (ID numbers, phones) for exact-match
  lookups and set-based joins without decrypting: HMAC-SHA256, or HMAC-SM3 (GB/T 32905) when
  the key it is derived from is an SM4 key. The lookup key is versioned like the sealing key:
  a hash is keyed by the key that sealed its row's value (the first listed, when written), and
  a lookup matches under every listed key, so during a rotation values hashed under the old key
  and the new one are both found; `rotate-keys` re-keys them (services/rotation.py).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import hmac as crypto_hmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

AES_256_GCM = "AES-256-GCM"
SM4_GCM = "SM4-GCM"
_KEY_BYTES = {AES_256_GCM: 32, SM4_GCM: 16}
_TAG_BYTES = 16


class KeyConfigError(ValueError):
    pass


class Aead(Protocol):
    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...
    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...


class SM4GCM:
    """SM4 in GCM mode with the interface of `AESGCM` (ciphertext with the 16-byte tag
    appended). `cryptography` offers SM4-GCM through its `Cipher` API, not as an AEAD class;
    a test checks it against RFC 8998's vector."""

    def __init__(self, key: bytes) -> None:
        self._algorithm = algorithms.SM4(key)

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        encryptor = Cipher(self._algorithm, modes.GCM(nonce)).encryptor()
        if associated_data:
            encryptor.authenticate_additional_data(associated_data)
        body = encryptor.update(data) + encryptor.finalize()
        return body + encryptor.tag

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes:
        body, tag = data[:-_TAG_BYTES], data[-_TAG_BYTES:]
        decryptor = Cipher(self._algorithm, modes.GCM(nonce, tag)).decryptor()
        if associated_data:
            decryptor.authenticate_additional_data(associated_data)
        return decryptor.update(body) + decryptor.finalize()


def algorithm_of(kid: str) -> str:
    return SM4_GCM if kid.lower().startswith("sm4") else AES_256_GCM


def aead_for(kid: str, key: bytes) -> Aead:
    return SM4GCM(key) if algorithm_of(kid) == SM4_GCM else AESGCM(key)


def _parse_keys(spec: str) -> list[tuple[str, bytes]]:
    keys: list[tuple[str, bytes]] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        kid, sep, b64 = part.partition(":")
        if not sep:
            raise KeyConfigError("FIELD_ENCRYPTION_KEY entries must look like kid:base64key")
        key = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4))
        algorithm = algorithm_of(kid)
        if len(key) != _KEY_BYTES[algorithm]:
            raise KeyConfigError(
                f"FIELD_ENCRYPTION_KEY {kid!r} must be {_KEY_BYTES[algorithm]} bytes ({algorithm})"
            )
        keys.append((kid, key))
    if not keys:
        raise KeyConfigError("FIELD_ENCRYPTION_KEY is empty")
    return keys


@dataclass
class FieldCipher:
    keys: list[tuple[str, bytes]]

    @classmethod
    def from_spec(cls, spec: str) -> FieldCipher:
        return cls(_parse_keys(spec))

    @property
    def current_kid(self) -> str:
        return self.keys[0][0]

    def encrypt(self, plaintext: str) -> str:
        kid, key = self.keys[0]
        nonce = os.urandom(12)
        sealed = aead_for(kid, key).encrypt(nonce, plaintext.encode(), kid.encode())
        return f"{kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"

    def decrypt(self, token: str) -> str:
        kid, _, body = token.partition(":")
        key = dict(self.keys).get(kid)
        if key is None:
            raise KeyConfigError(f"no key {kid!r} configured to decrypt this value")
        raw = base64.urlsafe_b64decode(body)
        return aead_for(kid, key).decrypt(raw[:12], raw[12:], kid.encode()).decode()

    @property
    def hash_kid(self) -> str:
        """The key new lookup hashes are keyed by: the current (first listed) key, the one that
        seals the value beside them, so a row's hash and its sealed value share a key id."""
        return self.current_kid

    def hash_key(self, kid: str | None = None) -> bytes:
        """The HMAC key derived from key `kid` (default: the current key)."""
        kid = kid or self.hash_kid
        key = dict(self.keys).get(kid)
        if key is None:
            raise KeyConfigError(f"no key {kid!r} configured to key lookup hashes")
        return hashlib.sha256(b"e-rescue-hmac|" + key).digest()

    def hash_algorithm_of(self, kid: str) -> str:
        """HMAC-SM3 under an SM4 key, else HMAC-SHA256."""
        return "HMAC-SM3" if algorithm_of(kid) == SM4_GCM else "HMAC-SHA256"

    @property
    def hash_algorithm(self) -> str:
        """The algorithm of new lookup hashes (by the current key)."""
        return self.hash_algorithm_of(self.hash_kid)

    @property
    def lookup_kids(self) -> list[str]:
        """Every key a stored hash may be keyed by: every listed key, the current one first."""
        return [kid for kid, _ in self.keys]


class KeyedHash:
    """A reusable keyed hash (the key schedule built once): `KeyedHash(key, sm3).hex(value)`."""

    def __init__(self, key: bytes, *, sm3: bool = False) -> None:
        self._sm3 = sm3
        if sm3:
            self._mac: crypto_hmac.HMAC | hmac.HMAC = crypto_hmac.HMAC(key, hashes.SM3())
        else:
            self._mac = hmac.new(key, digestmod=hashlib.sha256)

    def hex(self, value: str) -> str:
        mac = self._mac.copy()
        mac.update(value.encode())
        if isinstance(mac, crypto_hmac.HMAC):
            return mac.finalize().hex()
        return mac.hexdigest()


def keyed_hash(key: bytes, value: str, *, sm3: bool = False) -> str:
    return KeyedHash(key, sm3=sm3).hex(value)


def token_hash(token: str) -> str:
    """Bearer tokens and invitation codes are stored only as SHA-256 digests."""
    return hashlib.sha256(token.encode()).hexdigest()
