"""QR codes as PNG: invitations, service-point posters' links, a printed slip's number."""

from __future__ import annotations

import base64
import io

import qrcode


def qr_png(content: str) -> bytes:
    """A QR code PNG (medium error correction, survives a crumpled printout)."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=8, border=4)
    qr.add_data(content)
    qr.make(fit=True)
    out = io.BytesIO()
    qr.make_image().save(out)
    return out.getvalue()


def qr_data_uri(content: str) -> str:
    return "data:image/png;base64," + base64.b64encode(qr_png(content)).decode()
