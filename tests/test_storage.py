"""Photos and department files behind one storage interface: local disk (the default) and
S3-compatible object storage through boto3, the latter against moto's server mode on loopback
(a real HTTP server in its own process; nothing is patched)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from server.config import Config, ConfigError
from server.models import Photo
from server.services.applications.photos import photo_key
from server.storage import ObjectMissing, build_storage
from server.storage.local import LocalStorage
from server.storage.s3 import S3Storage
from tests.builders.uploads import make_jpeg, upload


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a loopback port, for the whole run."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "1"},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # a loaded machine imports moto slowly
        while True:
            try:
                requests.get(url, timeout=10)
                break
            except requests.RequestException:
                if time.monotonic() > deadline or proc.poll() is not None:
                    pytest.fail("moto server did not start")
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def s3_config(endpoint: str, **extra: str) -> Config:
    return Config(
        storage_backend="s3",
        s3_bucket=extra.pop("bucket", "e-rescue-test"),
        s3_endpoint_url=endpoint,
        s3_region="cn-north-1",
        s3_access_key_id="test",
        s3_secret_access_key="test",
        s3_prefix=extra.pop("prefix", f"run-{uuid.uuid4().hex[:8]}"),
        **extra,
    )


@pytest.fixture
def s3_storage(s3_endpoint: str) -> S3Storage:
    storage = build_storage(s3_config(s3_endpoint))
    assert isinstance(storage, S3Storage)
    with contextlib.suppress(storage.client.exceptions.BucketAlreadyOwnedByYou):
        storage.client.create_bucket(
            Bucket=storage.bucket,
            CreateBucketConfiguration={"LocationConstraint": "cn-north-1"},
        )
    return storage


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path):  # noqa: ANN201
    if request.param == "local":
        return LocalStorage(tmp_path / "store")
    return request.getfixturevalue("s3_storage")


def test_each_backend_stores_reads_lists_and_deletes_by_key(storage) -> None:  # noqa: ANN001
    """The contract both backends keep: put replaces, get returns the bytes, a missing key is
    `ObjectMissing`, keys list by prefix, delete is idempotent."""
    storage.put("ab/one.jpg", b"first")
    storage.put("ab/one.jpg", b"second")
    storage.put("feed-batches/1.sealed", b"\x00\xff" * 1000)
    assert storage.get("ab/one.jpg") == b"second"
    assert storage.exists("ab/one.jpg") and not storage.exists("ab/two.jpg")
    assert sorted(storage.keys()) == ["ab/one.jpg", "feed-batches/1.sealed"]
    assert list(storage.keys("feed-batches/")) == ["feed-batches/1.sealed"]
    storage.delete("ab/one.jpg")
    storage.delete("ab/one.jpg")
    with pytest.raises(ObjectMissing):
        storage.get("ab/one.jpg")


@pytest.mark.parametrize("key", ["", "/etc/passwd", "../up", "a/../b", "a//b", "a\\b"])
def test_a_key_that_could_leave_its_place_is_refused(key: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LocalStorage(tmp_path).put(key, b"x")


def test_local_disk_is_the_default_so_make_run_needs_nothing_else(tmp_path: Path) -> None:
    storage = build_storage(Config.from_env({"UPLOAD_DIR": str(tmp_path)}, dotenv=False))
    assert isinstance(storage, LocalStorage) and storage.root == tmp_path


def test_object_storage_is_chosen_and_checked_from_the_environment() -> None:
    config = Config.from_env(
        {"STORAGE_BACKEND": "s3", "S3_BUCKET": "photos", "S3_ENDPOINT_URL": "http://minio:9000"},
        dotenv=False,
    )
    assert isinstance(build_storage(config), S3Storage)
    with pytest.raises(ConfigError, match="S3_BUCKET"):
        Config.from_env(
            {**_production_env(), "STORAGE_BACKEND": "s3", "S3_BUCKET": ""}, dotenv=False
        ).check()


def _production_env() -> dict[str, str]:
    return {
        "APP_ENV": "production",
        "SECRET_KEY": "s" * 40,
        "FIELD_ENCRYPTION_KEY": "k2:" + "A" * 43,
        "WECHAT_SECRET": "real",
        "WECHAT_API_BASE": "https://api.weixin.qq.com/",
        "MINIPROGRAM_LINK_BASE": "https://e.example.cn/mp/",
        "DATABASE_URL": "postgresql+psycopg://app@db/e",
    }


def test_photos_uploaded_and_served_through_object_storage(
    client, resident_login, runtime, db, s3_storage, monkeypatch
) -> None:
    """With `STORAGE_BACKEND=s3` an upload lands in the bucket (photo and thumbnail), nothing on
    the local disk, and the owner reads it back through the API."""
    monkeypatch.setattr(runtime, "storage", s3_storage)
    before = set(LocalStorage(runtime.config.upload_dir).keys())
    login = resident_login()
    resp = upload(client, login, make_jpeg(size=(640, 480), color=(1, 2, 3)))
    assert resp.status_code == 201, resp.get_json()
    photo = db.get(Photo, resp.get_json()["id"])
    assert s3_storage.exists(photo_key(photo.sha256))
    assert s3_storage.exists(photo_key(photo.sha256, thumbnail=True))
    assert set(LocalStorage(runtime.config.upload_dir).keys()) == before
    got = client.get(f"/api/v1/uploads/{photo.id}", headers=login.headers)
    assert got.status_code == 200 and got.data == s3_storage.get(photo_key(photo.sha256))
    thumb = client.get(f"/api/v1/uploads/{photo.id}/thumbnail", headers=login.headers)
    assert thumb.status_code == 200 and thumb.data[:2] == b"\xff\xd8"
    assert len(got.data) == photo.bytes


def test_a_photo_whose_object_is_gone_is_404_not_500(
    client, resident_login, runtime, db, s3_storage, monkeypatch
) -> None:
    monkeypatch.setattr(runtime, "storage", s3_storage)
    login = resident_login()
    resp = upload(client, login, make_jpeg(size=(320, 200), color=(7, 7, 7)))
    photo = db.get(Photo, resp.get_json()["id"])
    s3_storage.delete(photo_key(photo.sha256))
    got = client.get(f"/api/v1/uploads/{photo.id}", headers=login.headers)
    assert got.status_code == 404 and got.get_json()["code"]
