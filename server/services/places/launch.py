"""Codes that open the mini-program: the service-point poster's and the helper invitation's.

Two kinds, both opening the page with its village or invitation code:

- a 小程序码 from WeChat's `getwxacodeunlimit`: it opens `page` with `options.scene`, at most 32
  visible ASCII characters, so the scene is a short code (`v=<village>`, `i=<invitation>`) that the
  mini-program resolves through `GET /api/v1/launch/<scene>` (`resolve_scene`);
- a plain QR code of an HTTPS link under `MINIPROGRAM_LINK_BASE` (扫普通链接二维码打开小程序: the
  WeChat console maps the link prefix to the page, which reads the whole link from `options.q`).

A 小程序码 needs WeChat; when WeChat cannot be reached (or refuses), the plain link's QR code is
drawn instead, so a poster can always be printed.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlencode

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import NotFound
from server.models import Village
from server.wechat.interface import WeChatError, WeChatGateway

log = logging.getLogger(__name__)

APPLY_PAGE = "pages/apply/apply"
REDEEM_PAGE = "pages/helper/redeem"
#: Where a member of a volunteer team or organisation redeems their invitation.
VOLUNTEER_REDEEM_PAGE = "pages/volunteer/redeem"
#: The link path after MINIPROGRAM_LINK_BASE for each page (the console maps each prefix).
LINK_PATHS = {APPLY_PAGE: "apply", REDEEM_PAGE: "redeem", VOLUNTEER_REDEEM_PAGE: "volunteer"}
#: WeChat's limit for getwxacodeunlimit's scene: 1–32 visible ASCII characters.
SCENE_RE = re.compile(r"[\x21-\x7e]{1,32}")
#: WECHAT_MINIPROGRAM_STATE (subscribe messages' names) → getwxacodeunlimit's env_version.
ENV_VERSIONS = {"formal": "release", "trial": "trial", "developer": "develop"}


class CodeKind(StrEnum):
    WXACODE = "wxacode"
    LINK = "link"


@dataclass(frozen=True, slots=True)
class LaunchTarget:
    """A page of the mini-program with its parameters, and the scene that stands for both."""

    page: str
    params: dict[str, str] = field(default_factory=dict)
    scene: str = ""


def village_target(village_code: str) -> LaunchTarget:
    return LaunchTarget(APPLY_PAGE, {"village": village_code}, f"v={village_code}")


def invitation_target(code: str) -> LaunchTarget:
    return LaunchTarget(REDEEM_PAGE, {"code": code}, f"i={code}")


def volunteer_invitation_target(code: str) -> LaunchTarget:
    return LaunchTarget(VOLUNTEER_REDEEM_PAGE, {"code": code}, f"j={code}")


def link(target: LaunchTarget, *, base: str) -> str:
    """The HTTPS link a plain QR code carries: `<base>apply?village=…` or `<base>redeem?code=…`."""
    return f"{base.rstrip('/')}/{LINK_PATHS[target.page]}?{urlencode(target.params)}"


def resolve_scene(db: Session, scene: str) -> LaunchTarget:
    """The page and parameters a 小程序码's scene stands for; anything else is not found.

    A village scene names a village that exists; an invitation scene is passed on as it is
    (redeeming checks the code, so this answer tells nothing about it).
    """
    kind, _, value = scene.partition("=")
    if SCENE_RE.fullmatch(scene) and value:
        if kind == "v" and db.scalar(select(Village.id).where(Village.code == value)) is not None:
            return village_target(value)
        if kind == "i":
            return invitation_target(value)
        if kind == "j":
            return volunteer_invitation_target(value)
    raise NotFound("二维码无效或已过期", code="scene_unknown")


def code_png(
    target: LaunchTarget,
    *,
    kind: CodeKind,
    gateway: WeChatGateway | None,
    link_base: str,
    miniprogram_state: str = "formal",
) -> tuple[bytes, CodeKind]:
    """The code's PNG and its kind: a 小程序码 when asked for and WeChat answers, else the plain
    link's QR code (also when the scene would not fit WeChat's 32 characters)."""
    from server.services.kernel.qr import qr_png

    if kind is CodeKind.WXACODE and gateway is not None and SCENE_RE.fullmatch(target.scene):
        try:
            png = gateway.get_unlimited_wxacode(
                scene=target.scene,
                page=target.page,
                check_path=False,
                env_version=ENV_VERSIONS.get(miniprogram_state, "release"),
            )
            return png, CodeKind.WXACODE
        except WeChatError as exc:
            log.warning("getwxacodeunlimit failed, drawing the link's QR code: %s", exc)
    return qr_png(link(target, base=link_base)), CodeKind.LINK
