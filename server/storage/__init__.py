"""Where photos and department files are kept: a small interface with two implementations.

- `LocalStorage`: a directory on this machine (`UPLOAD_DIR`), the default, so `make run` needs
  nothing else. Writes are atomic (temporary file, then rename).
- `S3Storage`: an S3-compatible object store (MinIO, Ceph RGW, 阿里云 OSS, 华为云 OBS, AWS) through
  boto3, for several app processes on several machines.

Keys are relative paths with `/` (`ab/abcdef….jpg`, `feed-batches/12-….sealed`); the backend
never interprets them beyond refusing `..` and absolute paths. Nothing here imports the services;
services receive a `Storage` as an argument, like the WeChat gateway. `build_storage` is called
by `Runtime`; importing this module does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from server.config import Config


class StorageError(RuntimeError):
    """The storage backend failed (unreachable, refused); the message names the key."""


class ObjectMissing(KeyError):  # noqa: N818 - reads as "the object is missing"
    """No object is stored under this key."""


class Storage(Protocol):
    #: A short name for logs and metrics (`local`, `s3`).
    kind: str

    def put(self, key: str, data: bytes) -> None:
        """Store `data` under `key`, replacing what was there (atomic for readers)."""

    def get(self, key: str) -> bytes:
        """The bytes under `key`; `ObjectMissing` when there are none."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove `key`; a missing key is not an error."""

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every stored key starting with `prefix`, in no particular order."""


def check_key(key: str) -> str:
    """A key is a relative path of plain segments: no `..`, no empty or absolute parts."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in key:
        raise ValueError(f"invalid storage key {key!r}")
    return key


def build_storage(config: Config) -> Storage:
    """The backend chosen by `STORAGE_BACKEND` (`local`, the default, or `s3`)."""
    if config.storage_backend == "s3":
        from server.storage.s3 import S3Storage

        return S3Storage.from_config(config)
    if config.storage_backend != "local":
        raise ValueError(f"STORAGE_BACKEND must be local or s3, not {config.storage_backend!r}")
    from server.storage.local import LocalStorage

    return LocalStorage(config.upload_dir)


__all__ = ["ObjectMissing", "Storage", "StorageError", "build_storage", "check_key"]
