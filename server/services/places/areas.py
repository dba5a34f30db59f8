"""Reference data: Boshan's eleven divisions, the departments, and villages loaded by staff."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, selectinload

from server.db import Precompiled
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.models import Department, Role, Town, TownKind, Village
from server.services.feeds.reader import read_table
from server.services.kernel import text
from server.services.kernel.access import Actor, require_role
from server.services.kernel.audit import record
from server.services.kernel.workbooks import find_header_row
from server.services.places.public_info import seed_public_info

#: (code, name, kind, platform phone). Codes are stable: they appear in files, URLs and QR codes.
TOWNS: tuple[tuple[str, str, TownKind, str], ...] = (
    ("chengdong", "城东街道", TownKind.STREET, "0533-4181001"),
    ("chengxi", "城西街道", TownKind.STREET, "0533-4181002"),
    ("shantou", "山头街道", TownKind.STREET, "0533-4181003"),
    ("yucheng", "域城镇", TownKind.TOWN, "0533-4181004"),
    ("baita", "白塔镇", TownKind.TOWN, "0533-4181005"),
    ("badou", "八陡镇", TownKind.TOWN, "0533-4181006"),
    ("shima", "石马镇", TownKind.TOWN, "0533-4181007"),
    ("boshan", "博山镇", TownKind.TOWN, "0533-4181008"),
    ("chishang", "池上镇", TownKind.TOWN, "0533-4181009"),
    ("yuanquan", "源泉镇", TownKind.TOWN, "0533-4181010"),
    ("kaifaqu", "经济开发区", TownKind.ZONE, "0533-4181011"),
)

#: Departments named in the policy, plus those that give special aid (housing, employment).
DEPARTMENTS: tuple[tuple[str, str], ...] = (
    ("propaganda", "区委宣传部"),
    ("emergency", "区应急管理局"),
    ("traffic_police", "区交警大队"),
    ("fire_rescue", "区消防救援大队"),
    ("disabled_federation", "区残联"),
    ("civil_affairs", "区民政局"),
    ("complaint_center", "区政府市民投诉中心"),
    ("health", "区卫生健康局"),
    ("medical_insurance", "区医保分局"),
    ("poverty_alleviation", "区扶贫办"),
    ("education", "区教体局"),
    ("housing", "区住房和城乡建设局"),
    ("human_resources", "区人力资源和社会保障局"),
)


def seed_reference(db: Session) -> None:
    """Insert or update the divisions and departments. Safe to run any number of times."""
    towns = {t.code: t for t in db.scalars(select(Town))}
    for order, (code, name, kind, phone) in enumerate(TOWNS):
        town = towns.get(code) or Town(code=code)
        town.name, town.kind, town.sort_order = name, kind, order
        town.phone = town.phone or phone
        db.add(town)
    departments = {d.code: d for d in db.scalars(select(Department))}
    for order, (code, name) in enumerate(DEPARTMENTS):
        dept = departments.get(code) or Department(code=code)
        dept.name, dept.sort_order = name, order
        db.add(dept)
    db.flush()
    seed_public_info(db)


def list_towns_with_villages(db: Session) -> list[Town]:
    return list(
        db.scalars(select(Town).options(selectinload(Town.villages)).order_by(Town.sort_order))
    )


def town_by_code(db: Session, code: str) -> Town:
    town = db.scalar(select(Town).where(Town.code == code))
    if town is None:
        raise NotFound("未找到该镇街", code="town_not_found")
    return town


def department_by_code(db: Session, code: str) -> Department:
    dept = db.scalar(select(Department).where(Department.code == code))
    if dept is None:
        raise NotFound("未找到该部门", code="department_not_found")
    return dept


def village_by_code(db: Session, code: str) -> Village:
    village = db.scalar(select(Village).where(Village.code == code))
    if village is None:
        raise NotFound("未找到该村（社区）", code="village_not_found")
    return village


@dataclass
class VillageLoadResult:
    created: int = 0
    updated: int = 0
    errors: list[dict[str, object]] = field(default_factory=list)


_TOWN_HEADERS = ("镇街", "镇（街道）", "镇街道", "所属镇街", "town", "town_code")
_NAME_HEADERS = ("村居", "村（社区）", "村社区", "名称", "village", "name")
_CODE_HEADERS = ("编码", "代码", "村居编码", "code", "village_code")


@dataclass(frozen=True, slots=True)
class VillageChange:
    """What loading one row of a villages file does to the village with its code."""

    #: "added", "renamed", "moved" (to another town) or "renamed_moved".
    kind: str
    row: int
    code: str
    name: str
    town: str
    old_name: str | None = None
    old_town: str | None = None


@dataclass
class VillagePreview:
    """A villages file as it would load (nothing written): the changes, the rows already as
    they are, the refused rows, and the valid rows again as CSV to confirm with."""

    changes: list[VillageChange] = field(default_factory=list)
    unchanged: int = 0
    errors: list[dict[str, object]] = field(default_factory=list)
    table: str = ""

    def of_kind(self, *kinds: str) -> list[VillageChange]:
        return [c for c in self.changes if c.kind in kinds]


@dataclass
class _Draft:
    code: str
    name: str
    town_id: int


def _walk(db: Session, *, content: bytes, filename: str, apply: bool) -> VillagePreview:
    """Read a villages file row by row as loading it would: each later row sees the earlier
    ones. With `apply` the villages are written; without, only drafts change."""
    rows = read_table(content, filename)
    found = find_header_row(
        rows, {"town": _TOWN_HEADERS, "name": _NAME_HEADERS, "code": _CODE_HEADERS}
    )
    if found.missing:
        raise ValidationFailed(
            "文件缺少必要的列：镇街、村居、编码",
            code="villages_header_missing",
            errors={"file": [f"missing column: {m}" for m in found.missing]},
        )
    header_idx, col = found.index, found.columns
    all_towns = list(db.scalars(select(Town)))
    towns = {t.code: t for t in all_towns}
    towns.update({t.name: t for t in all_towns})
    town_names = {t.id: t.name for t in all_towns}
    villages = {v.code: v for v in db.scalars(select(Village))}
    existing: dict[str, Any] = (
        villages
        if apply
        else {c: _Draft(code=v.code, name=v.name, town_id=v.town_id) for c, v in villages.items()}
    )
    result = VillagePreview()
    valid = io.StringIO()
    writer = csv.writer(valid)
    writer.writerow(["镇街", "村居", "编码"])
    for offset, row in enumerate(rows[header_idx + 1 :], start=header_idx + 2):
        cells = [
            (row[i] if i < len(row) else "").strip()
            for i in (col["town"], col["name"], col["code"])
        ]
        town_key, name, code = cells
        if not any(cells):
            continue
        town = towns.get(town_key)
        if town is None or not name or not code:
            column = "镇街" if town is None else ("村居" if not name else "编码")
            result.errors.append(_row_error(offset, column, f"第{offset}行“{column}”无效或为空"))
            continue
        problem = village_problem(code=code, name=name) or _name_taken(
            existing, town=town, code=code, name=name
        )
        if problem is not None:
            column, message = problem
            result.errors.append(_row_error(offset, column, f"第{offset}行：{message}"))
            continue
        writer.writerow([town.code, name, code])
        before = existing.get(code)
        if before is None:
            kind = "added"
        else:
            renamed, moved = before.name != name, before.town_id != town.id
            kind = (
                "renamed_moved"
                if renamed and moved
                else "renamed"
                if renamed
                else "moved"
                if moved
                else ""
            )
        if not kind:
            result.unchanged += 1
            continue
        result.changes.append(
            VillageChange(
                kind=kind,
                row=offset,
                code=code,
                name=name,
                town=town.name,
                old_name=before.name if before is not None else None,
                old_town=town_names.get(before.town_id) if before is not None else None,
            )
        )
        if apply:
            _upsert_village(db, existing, town=town, code=code, name=name)
        elif before is None:
            existing[code] = _Draft(code=code, name=name, town_id=town.id)
        else:
            before.name, before.town_id = name, town.id
    result.table = valid.getvalue()
    if apply:
        db.flush()
    return result


def preview_villages(db: Session, *, content: bytes, filename: str) -> VillagePreview:
    """What loading a villages file would add, rename and move, and which rows it refuses;
    nothing is written."""
    return _walk(db, content=content, filename=filename, apply=False)


def load_villages(db: Session, *, content: bytes, filename: str) -> VillageLoadResult:
    """Load villages from CSV/xlsx with columns 镇街, 村居, 编码. Rows are upserted by code."""
    walked = _walk(db, content=content, filename=filename, apply=True)
    added = len(walked.of_kind("added"))
    return VillageLoadResult(
        created=added, updated=len(walked.changes) - added, errors=walked.errors
    )


def import_villages(
    db: Session, *, content: bytes, filename: str, actor: Actor, now: datetime
) -> VillageLoadResult:
    """The system administrator loads a villages file (audited with its counts)."""
    require_role(actor, Role.SYSTEM_ADMIN)
    result = load_villages(db, content=content, filename=filename)
    record(
        db,
        actor=actor,
        action="villages.imported",
        target_type="village",
        target_id=None,
        now=now,
        detail={"created": result.created, "updated": result.updated},
    )
    return result


#: A village code as files, URLs and poster QR codes carry it.
_VILLAGE_CODE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
VILLAGE_NAME_MAX = 50


class VillageNameTaken(Conflict):
    code = "village_name_taken"


def village_problem(*, code: str, name: str) -> tuple[str, str] | None:
    """(column, Chinese reason) when a village's code or name breaks the rules, else None.
    The name is printed on posters and slips: one line, plain text, at most 50 characters."""
    if not _VILLAGE_CODE.match(code):
        return "编码", "村居编码只能包含字母、数字、短横线和下划线，最多32个字符"
    message = text.describe(name, field="village_name", single_line=True)
    if message is not None:
        return "村居", message
    if len(name) > VILLAGE_NAME_MAX:
        return "村居", f"村（社区）名称最多{VILLAGE_NAME_MAX}个字"
    return None


def _name_taken(
    existing: dict[str, Village], *, town: Town, code: str, name: str
) -> tuple[str, str] | None:
    """Two villages of one town cannot share a name (residents pick it from a list)."""
    for other in existing.values():
        if other.town_id == town.id and other.name == name and other.code != code:
            return "村居", f"{town.name}已有名为“{name}”的村（社区）（编码 {other.code}）"
    return None


def _row_error(row: int, column: str, message: str) -> dict[str, object]:
    return {"row": row, "column": column, "code": "invalid_value", "message": message}


def save_village(db: Session, *, actor: Actor, town_code: str, code: str, name: str) -> Village:
    """Add or rename one village. Town staff may only maintain villages of their own town."""
    town = town_by_code(db, town_code)
    if actor.role is Role.TOWN_STAFF and actor.town_id != town.id:
        raise Forbidden("只能维护本镇街的村（社区）")
    problem = village_problem(code=code, name=name)
    if problem is not None:
        field_name = "code" if problem[0] == "编码" else "name"
        raise ValidationFailed(problem[1], errors={field_name: [problem[1]]})
    existing = {v.code: v for v in db.scalars(select(Village).where(Village.code == code))}
    if existing and actor.role is Role.TOWN_STAFF and existing[code].town_id != actor.town_id:
        raise Forbidden("只能维护本镇街的村（社区）")
    same_name = db.scalars(
        select(Village).where(Village.town_id == town.id, Village.name == name)
    ).all()
    taken = _name_taken({v.code: v for v in same_name}, town=town, code=code, name=name)
    if taken is not None:
        raise VillageNameTaken(taken[1], errors={"name": [taken[1]]})
    _upsert_village(db, existing, town=town, code=code, name=name)
    db.flush()
    return existing[code]


def _upsert_village(
    db: Session, existing: dict[str, Village], *, town: Town, code: str, name: str
) -> str | None:
    """Insert or update by code; returns "created", "updated" or None (unchanged)."""
    village = existing.get(code)
    if village is None:
        existing[code] = Village(code=code, name=name, town_id=town.id)
        db.add(existing[code])
        return "created"
    if (village.name, village.town_id) != (name, town.id):
        village.name, village.town_id = name, town.id
        return "updated"
    return None


class AreaRef(NamedTuple):
    id: int
    code: str
    name: str


#: Reference lists for pickers and names on hot pages: Core rows, compiled once.
_TOWNS = Precompiled(select(Town.id, Town.code, Town.name).order_by(Town.sort_order, Town.code))
_DEPARTMENTS = Precompiled(
    select(Department.id, Department.code, Department.name).order_by(
        Department.sort_order, Department.code
    )
)


def list_towns(conn: Connection) -> list[AreaRef]:
    """Every town in display order (id, code, name)."""
    return [AreaRef(*row) for row in _TOWNS.rows(conn, {})]


def list_departments(conn: Connection) -> list[AreaRef]:
    return [AreaRef(*row) for row in _DEPARTMENTS.rows(conn, {})]


def village_names(conn: Connection, village_ids: set[int]) -> dict[int, str]:
    """Names of the villages a page shows (none looked up when it shows none)."""
    if not village_ids:
        return {}
    rows = conn.execute(select(Village.id, Village.name).where(Village.id.in_(village_ids)))
    return {village_id: name for village_id, name in rows}
