"""Builders for photo uploads: a JPEG's bytes, and posting a file to the upload endpoint."""

from __future__ import annotations

import io

from PIL import Image


def make_jpeg(
    *, size: tuple[int, int] = (800, 600), color=(200, 80, 40), mode: str = "RGB", exif=None
) -> bytes:
    im = Image.new(mode, size, color)
    out = io.BytesIO()
    kwargs = {"exif": exif} if exif is not None else {}
    im.save(out, "JPEG", quality=90, **kwargs)
    return out.getvalue()


def upload(client, login, content: bytes, filename: str = "photo.jpg", ctype="image/jpeg"):
    return client.post(
        "/api/v1/uploads",
        headers=login.headers,
        data={"file": (io.BytesIO(content), filename, ctype)},
        content_type="multipart/form-data",
    )
