"""Objects in an S3-compatible store (MinIO, Ceph RGW, OSS, OBS, AWS) through boto3.

Configured by `S3_BUCKET`, `S3_ENDPOINT_URL` (empty: AWS), `S3_REGION`, `S3_PREFIX` and the
credentials `S3_ACCESS_KEY_ID` / `S3_SECRET_ACCESS_KEY` (empty: boto3's own chain, e.g. an
instance role or `AWS_*` variables). The bucket must exist; objects are private (no ACL is
set) and served only through the app. One client per process, thread-safe, keep-alive.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from server.storage import ObjectMissing, StorageError, check_key

if TYPE_CHECKING:
    from server.config import Config

_MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


class S3Storage:
    kind = "s3"

    def __init__(self, client: Any, bucket: str, *, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""

    @classmethod
    def from_config(cls, config: Config) -> S3Storage:
        import boto3
        from botocore.config import Config as BotoConfig

        if not config.s3_bucket:
            raise ValueError("STORAGE_BACKEND=s3 needs S3_BUCKET")
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=config.s3_endpoint_url or None,
            region_name=config.s3_region or None,
            aws_access_key_id=config.s3_access_key_id or None,
            aws_secret_access_key=config.s3_secret_access_key or None,
            config=BotoConfig(
                connect_timeout=config.s3_timeout,
                read_timeout=config.s3_timeout,
                retries={"max_attempts": 3, "mode": "standard"},
                # Path-style addressing works with every S3-compatible server on a private host.
                s3={"addressing_style": "path"},
            ),
        )
        return cls(client, config.s3_bucket, prefix=config.s3_prefix)

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def put(self, key: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._name(key), Body=data)
        except Exception as exc:
            raise StorageError(f"storing {key} failed: {exc.__class__.__name__}") from exc

    def get(self, key: str) -> bytes:
        try:
            answer = self.client.get_object(Bucket=self.bucket, Key=self._name(key))
            return answer["Body"].read()
        except Exception as exc:
            if _is_missing(exc):
                raise ObjectMissing(key) from exc
            raise StorageError(f"reading {key} failed: {exc.__class__.__name__}") from exc

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._name(key))
            return True
        except Exception as exc:
            if _is_missing(exc):
                return False
            raise StorageError(f"checking {key} failed: {exc.__class__.__name__}") from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except Exception as exc:
            if not _is_missing(exc):
                raise StorageError(f"deleting {key} failed: {exc.__class__.__name__}") from exc

    def keys(self, prefix: str = "") -> Iterator[str]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for item in page.get("Contents", []):
                yield item["Key"][len(self.prefix) :]


def _is_missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", "")) in _MISSING_CODES
