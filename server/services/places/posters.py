"""Service-point posters: a printable A4 sheet per village with a code that opens the apply page.

A village's poster says what the service is ("博山e救助"), where it is (town and village), whom to
call (the district hotline and the town's platform phone) and how to apply in three steps, around
a large code that opens the mini-program's apply page with the village code, so an application
started from that sheet has the village filled in: a 小程序码 from WeChat when it answers, else a
plain QR code of the HTTPS link WeChat maps to the page (services/places/launch.py).

The poster is drawn at 300 dpi on A4 (2480 × 3508 px) with Noto Sans SC, which the project
installs from PyPI (`justmytype-intl-cjk`, SIL Open Font Licence 1.1); nothing is downloaded at
run time. A drawn poster is kept on disk under the upload directory, named by the hash of what it
shows, so it is drawn again only when its content (or the layout) changes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from urllib.parse import quote

import qrcode
from PIL import Image, ImageDraw, ImageFont
from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import NotFound
from server.models import ContactKind, PublicContact, Role, Town, Village
from server.services.kernel.access import Actor, require_role, scope_by_area
from server.services.places import launch
from server.wechat.interface import WeChatGateway

#: A4 at 300 dpi (210 × 297 mm), the proportions 1 : √2.
WIDTH, HEIGHT = 2480, 3508
DPI = 300
#: Bump when the drawing changes, so cached posters are drawn again.
LAYOUT_VERSION = 2
#: Where the CJK font comes from: (package, resource path inside it).
FONT_RESOURCE = ("justmytype_intl_cjk", "fonts/ofl/notosanssc/NotoSansSC[wght].ttf")
#: Subfolder of the upload directory holding drawn posters.
CACHE_SUBDIR = "posters"

#: Who may print a village's poster: its town's staff, the center, and the village's helpers.
POSTER_ROLES = (Role.TOWN_STAFF, Role.CENTER_STAFF, Role.HELPER)

# Colours: a civic red with warm accents, dark text on white for legibility at a distance.
RED = (190, 30, 45)
RED_DARK = (150, 20, 32)
GOLD = (255, 226, 150)
INK = (34, 34, 34)
GREY = (96, 96, 96)
LIGHT = (246, 241, 236)
WHITE = (255, 255, 255)

THIN, REGULAR, MEDIUM, BOLD, BLACK = 300, 400, 500, 700, 900

#: The three steps printed on every poster: (headline, explanation).
STEPS: tuple[tuple[str, str], ...] = (
    ("微信扫码", "用微信扫一扫\n上方二维码"),
    ("填写拍照", "填写家庭情况\n拍照上传证件"),
    ("等待答复", "镇街受理审核\n微信通知结果"),
)


@dataclass(frozen=True, slots=True)
class PosterContent:
    """Everything a poster shows; its hash names the cached file."""

    village_code: str
    village_name: str
    town_name: str
    town_phone: str | None
    hotline: str
    #: The mini-program page the code opens, with the village code.
    page: str
    #: The HTTPS link a plain QR code carries (扫普通链接二维码打开小程序).
    link: str = ""
    #: `wxacode` (WeChat's 小程序码 of `scene`) or `link` (a QR code of `link`).
    code_kind: str = launch.CodeKind.LINK.value
    scene: str = ""

    @property
    def digest(self) -> str:
        payload = json.dumps({**asdict(self), "layout": LAYOUT_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Poster:
    """A drawn poster on disk."""

    path: Path
    digest: str
    content: PosterContent


def apply_page(village_code: str, *, page: str) -> str:
    """The apply page with the village preselected: `pages/apply/apply?village=<code>`."""
    return f"{page}?village={quote(village_code, safe='')}"


def poster_content(
    db: Session,
    village_code: str,
    *,
    actor: Actor,
    hotline: str,
    page: str,
    link_base: str = "",
    code_kind: launch.CodeKind = launch.CodeKind.LINK,
) -> PosterContent:
    """What the poster of a village in `actor`'s reach shows; other villages are not found.

    The district hotline is the one the center keeps in the public contacts; `hotline` (the
    DISTRICT_HOTLINE setting) stands in when there is none. The town's phone is its platform's.
    """
    require_role(actor, *POSTER_ROLES)
    query = scope_by_area(
        select(Village, Town).join(Town, Village.town_id == Town.id),
        actor,
        town_col=Village.town_id,
        village_col=Village.id,
    ).where(Village.code == village_code)
    row = db.execute(query).first()
    if row is None:
        raise NotFound("未找到该村（社区）", code="village_not_found")
    village, town = row
    return PosterContent(
        village_code=village.code,
        village_name=village.name,
        town_name=town.name,
        town_phone=town.phone,
        hotline=district_hotline(db) or hotline,
        page=apply_page(village.code, page=page),
        link=launch.link(launch.village_target(village.code), base=link_base) if link_base else "",
        code_kind=code_kind.value,
        scene=launch.village_target(village.code).scene,
    )


def district_hotline(db: Session) -> str | None:
    """The district hotline as the center maintains it in the public contacts, if set."""
    return db.scalar(
        select(PublicContact.phone)
        .where(PublicContact.kind == ContactKind.DISTRICT_HOTLINE)
        .order_by(PublicContact.sort_order, PublicContact.id)
        .limit(1)
    )


def village_poster(
    db: Session,
    village_code: str,
    *,
    actor: Actor,
    hotline: str,
    page: str,
    upload_dir: str | Path,
    link_base: str,
    code_kind: launch.CodeKind = launch.CodeKind.LINK,
    gateway: WeChatGateway | None = None,
    miniprogram_state: str = "formal",
) -> Poster:
    """The poster of a village, drawn now or taken from the cache if its content is unchanged.

    A 小程序码 is asked of WeChat only when no poster with it is cached; when WeChat does not
    answer, the poster carries the plain link's QR code instead (and is cached as such).
    """
    content = poster_content(
        db,
        village_code,
        actor=actor,
        hotline=hotline,
        page=page,
        link_base=link_base,
        code_kind=code_kind,
    )
    cache_dir = Path(upload_dir) / CACHE_SUBDIR
    if code_kind is not launch.CodeKind.WXACODE:
        return cached_poster(content, cache_dir=cache_dir)
    cached = _cached_path(content, cache_dir)
    if cached.exists():
        return Poster(path=cached, digest=content.digest, content=content)
    target = launch.LaunchTarget(page, {"village": content.village_code}, content.scene)
    png, got = launch.code_png(
        target,
        kind=code_kind,
        gateway=gateway,
        link_base=link_base,
        miniprogram_state=miniprogram_state,
    )
    if got is launch.CodeKind.WXACODE:
        return cached_poster(content, cache_dir=cache_dir, code=png)
    return cached_poster(
        replace(content, code_kind=launch.CodeKind.LINK.value), cache_dir=cache_dir
    )


def _cached_path(content: PosterContent, cache_dir: Path) -> Path:
    prefix = hashlib.sha256(content.village_code.encode()).hexdigest()[:12]
    return cache_dir / f"{prefix}-{content.digest[:24]}.png"


def cached_poster(content: PosterContent, *, cache_dir: Path, code: bytes | None = None) -> Poster:
    """Draw `content` once per content hash; older posters of the same village are removed.

    `code` is the 小程序码 PNG to print; without it the poster carries a QR code of the link."""
    digest = content.digest
    prefix = hashlib.sha256(content.village_code.encode()).hexdigest()[:12]
    path = _cached_path(content, cache_dir)
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        png = render_poster(content, code=code)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, prefix=".poster-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(png)
            os.replace(tmp, path)  # atomic: a concurrent reader sees the old file or the new one
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        for stale in cache_dir.glob(f"{prefix}-*.png"):
            if stale != path:
                stale.unlink(missing_ok=True)
    return Poster(path=path, digest=digest, content=content)


# --- drawing ----------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def font_bytes() -> bytes:
    """The Noto Sans SC variable font shipped by the installed package (read once)."""
    package, name = FONT_RESOURCE
    return resources.files(package).joinpath(name).read_bytes()


def _font(size: int, weight: int = REGULAR) -> ImageFont.FreeTypeFont:
    font = ImageFont.truetype(io.BytesIO(font_bytes()), size)
    font.set_variation_by_axes([weight])
    return font


def _width(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.FreeTypeFont) -> float:
    return draw.textlength(text, font=font)


def _fitting_font(
    draw: ImageDraw.ImageDraw, text: str, *, size: int, weight: int, max_width: int
) -> ImageFont.FreeTypeFont:
    """The largest font up to `size` in which `text` fits on one line of `max_width`."""
    font = _font(size, weight)
    width = _width(draw, text, font)
    if width <= max_width:
        return font
    return _font(max(24, int(size * max_width / width)), weight)


def _centered(
    draw: ImageDraw.ImageDraw,
    text: str,
    *,
    y: int,
    font: ImageFont.FreeTypeFont,
    fill: tuple[int, int, int],
    cx: int = WIDTH // 2,
) -> None:
    """Draw one line centred on `cx`, with its visual top at `y`."""
    draw.text((cx, y), text, font=font, fill=fill, anchor="mt")


def _qr_image(data: str, *, side: int) -> Image.Image:
    """A crisp QR code (medium error correction) scaled by whole pixels to at most `side`."""
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=1, border=0)
    qr.add_data(data)
    qr.make(fit=True)
    modules = qr.modules_count
    box = max(1, side // modules)
    matrix = qr.get_matrix()
    img = Image.new("1", (modules, modules), 1)
    img.putdata([0 if cell else 1 for row in matrix for cell in row])
    return img.resize((modules * box, modules * box), Image.Resampling.NEAREST).convert("RGB")


def _code_image(content: PosterContent, code: bytes | None, *, side: int) -> Image.Image:
    """The 小程序码 from WeChat scaled to `side`, or a QR code of the link (of the page without
    a link base)."""
    if code is None:
        return _qr_image(content.link or content.page, side=side)
    image = Image.open(io.BytesIO(code)).convert("RGB")
    return image.resize((side, side), Image.Resampling.NEAREST)


def render_poster(content: PosterContent, *, code: bytes | None = None) -> bytes:
    """Draw the A4 poster of `content` and return it as a PNG (300 dpi)."""
    img = Image.new("RGB", (WIDTH, HEIGHT), WHITE)
    draw = ImageDraw.Draw(img)
    margin = 170
    inner = WIDTH - 2 * margin

    # Header (0–700): who we are.
    header_h = 700
    draw.rectangle((0, 0, WIDTH, header_h), fill=RED)
    draw.rectangle((0, header_h - 22, WIDTH, header_h), fill=RED_DARK)
    _centered(draw, "博山区社会救助综合服务中心", y=110, font=_font(66, MEDIUM), fill=GOLD)
    _centered(draw, "博山e救助", y=215, font=_font(230, BLACK), fill=WHITE)
    _centered(draw, "困难群众  主动发现  掌上申请", y=520, font=_font(80, MEDIUM), fill=WHITE)

    # Where this service point is (770–1020).
    _centered(draw, f"{content.town_name} · 救助服务点", y=775, font=_font(64, MEDIUM), fill=GREY)
    name_font = _fitting_font(draw, content.village_name, size=140, weight=BOLD, max_width=inner)
    _centered(draw, content.village_name, y=880, font=name_font, fill=INK)

    # The QR code on a white card with a red frame (1050–2380).
    qr = _code_image(content, code, side=860)
    quiet = 80
    card_side = qr.width + 2 * quiet
    card_x, card_y = (WIDTH - card_side) // 2, 1090
    card = (card_x, card_y, card_x + card_side, card_y + card_side)
    draw.rounded_rectangle(
        (card[0] - 36, card[1] - 36, card[2] + 36, card[3] + 36), radius=56, fill=LIGHT
    )
    draw.rounded_rectangle(card, radius=28, fill=WHITE, outline=RED, width=9)
    img.paste(qr, (card_x + quiet, card_y + quiet))
    y = card[3] + 90
    _centered(draw, "微信扫一扫  在线申请救助", y=y, font=_font(92, BOLD), fill=RED)
    hint = f"扫码后自动选择「{content.village_name}」"
    hint_font = _fitting_font(draw, hint, size=54, weight=REGULAR, max_width=inner)
    _centered(draw, hint, y=y + 135, font=hint_font, fill=GREY)

    # How to apply, in three steps (2440–2980).
    y = 2470
    draw.line((margin, y, WIDTH - margin, y), fill=(228, 218, 208), width=4)
    title, title_font = "申请三步走", _font(60, BOLD)
    half = int(_width(draw, title, title_font) / 2) + 40
    draw.rectangle((WIDTH // 2 - half, y - 10, WIDTH // 2 + half, y + 10), fill=WHITE)
    draw.text((WIDTH // 2, y), title, font=title_font, fill=RED_DARK, anchor="mm")
    y += 115
    column = inner // len(STEPS)
    number_font, head_font, body_font = _font(80, BOLD), _font(66, BOLD), _font(52, REGULAR)
    radius = 66
    for index, (headline, body) in enumerate(STEPS):
        cx = margin + column * index + column // 2
        draw.ellipse((cx - radius, y, cx + radius, y + 2 * radius), fill=RED)
        draw.text((cx, y + radius), str(index + 1), font=number_font, fill=WHITE, anchor="mm")
        if index < len(STEPS) - 1:
            ax, ay = cx + column // 2, y + radius
            draw.polygon([(ax - 20, ay - 28), (ax + 20, ay), (ax - 20, ay + 28)], fill=GOLD)
        _centered(draw, headline, y=y + 2 * radius + 40, font=head_font, fill=INK, cx=cx)
        draw.multiline_text(
            (cx, y + 2 * radius + 135),
            body,
            font=body_font,
            fill=GREY,
            anchor="ma",
            align="center",
            spacing=20,
        )

    # Footer (3070–3508): whom to call.
    top = HEIGHT - 438
    draw.rectangle((0, top, WIDTH, HEIGHT), fill=RED)
    _centered(draw, "社会救助服务热线", y=top + 55, font=_font(60, MEDIUM), fill=GOLD)
    _centered(draw, content.hotline, y=top + 135, font=_font(120, BOLD), fill=WHITE)
    lines = []
    if content.town_phone:
        lines.append(f"{content.town_name}便民服务平台  {content.town_phone}")
    lines.append("不会操作？可请村（社区）救助协理员帮您代办")
    for n, line in enumerate(lines):
        font = _fitting_font(draw, line, size=48, weight=REGULAR, max_width=inner)
        _centered(draw, line, y=top + 295 + n * 66, font=font, fill=WHITE)

    out = io.BytesIO()
    img.save(out, format="PNG", dpi=(DPI, DPI), optimize=True)
    return out.getvalue()
