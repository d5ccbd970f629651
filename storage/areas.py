"""Areas: the Kemendagri hierarchy, imported from CSV, and lookups over it."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from importlib.resources import files

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Area
from storage.types import AreaLevel

CSV_COLUMNS = ("code", "name", "level", "parent_code", "timezone")
TIMEZONES = ("Asia/Jakarta", "Asia/Makassar", "Asia/Jayapura")
ZONE_ABBREVIATION = {"Asia/Jakarta": "WIB", "Asia/Makassar": "WITA", "Asia/Jayapura": "WIT"}
_CODE = re.compile(r"^[0-9A-Za-z][0-9A-Za-z.\-]{0,31}$")
_RANK = {
    AreaLevel.PROVINSI: 0,
    AreaLevel.KABUPATEN: 1,
    AreaLevel.KOTA: 1,
    AreaLevel.KECAMATAN: 2,
    AreaLevel.KELURAHAN: 3,
    AreaLevel.DESA: 3,
    AreaLevel.RW: 4,
    AreaLevel.RT: 5,
}
VILLAGE_LEVELS = (AreaLevel.KELURAHAN.value, AreaLevel.DESA.value)


@dataclass(frozen=True, slots=True)
class AreaRow:
    """One validated line of an areas CSV file."""

    line: int
    code: str
    name: str
    level: AreaLevel
    parent_code: str | None
    timezone: str


class AreaImportError(Exception):
    """The file has bad rows; nothing was imported. ``problems`` holds one line per bad row."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    updated: int
    unchanged: int


def sample_csv() -> str:
    """The sample areas shipped with the package (the two KTN pilot villages and their
    parents; ``storage/samples/README.md`` about their codes): the sandbox's world, and
    ``ktn-bot areas import --sample``."""
    return files("storage").joinpath("samples", "areas-sample.csv").read_text(encoding="utf-8")


def parse_areas_csv(text: str) -> list[AreaRow]:
    """Parse and check every row; raise AreaImportError listing all bad rows by line number."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = tuple(h.strip() for h in (reader.fieldnames or ()))
    if header[: len(CSV_COLUMNS)] != CSV_COLUMNS:
        raise AreaImportError(
            [f"line 1: header must be {','.join(CSV_COLUMNS)} (got {','.join(header)})"]
        )
    rows: list[AreaRow] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for record in reader:
        line = reader.line_num
        if record.get(None):
            problems.append(f"line {line}: too many columns")
            continue
        values = {k: (record.get(k) or "").strip() for k in CSV_COLUMNS}
        if not any(values.values()):
            continue
        errors = []
        if not _CODE.match(values["code"]):
            errors.append(f"code {values['code']!r} is not a valid area code")
        elif values["code"] in seen:
            errors.append(f"code {values['code']} already given on line {seen[values['code']]}")
        if not values["name"]:
            errors.append("name is empty")
        elif len(values["name"]) > 120:
            errors.append("name is longer than 120 characters")
        try:
            level = AreaLevel(values["level"].lower())
        except ValueError:
            errors.append(f"level {values['level']!r} is not one of {', '.join(AreaLevel)}")
            level = AreaLevel.DESA
        if values["timezone"] not in TIMEZONES:
            errors.append(f"timezone {values['timezone']!r} is not one of {', '.join(TIMEZONES)}")
        if values["parent_code"] == values["code"] and values["code"]:
            errors.append("an area cannot be its own parent")
        if errors:
            problems.append(f"line {line}: " + "; ".join(errors))
            continue
        seen[values["code"]] = line
        rows.append(
            AreaRow(
                line,
                values["code"],
                values["name"],
                level,
                values["parent_code"] or None,
                values["timezone"],
            )
        )
    if problems:
        raise AreaImportError(problems)
    return rows


async def import_areas(session: AsyncSession, rows: Iterable[AreaRow]) -> ImportResult:
    """Create or update areas by code. Raises AreaImportError (caller rolls back) on bad parents."""
    rows = list(rows)
    existing = {a.code: a for a in (await session.scalars(select(Area))).all()}
    code_of_id = {a.id: code for code, a in existing.items()}
    by_code = {r.code: r for r in rows}
    problems: list[str] = []
    for row in rows:
        if row.parent_code is None:
            if row.level is not AreaLevel.PROVINSI:
                problems.append(f"line {row.line}: parent_code is required for level {row.level}")
            continue
        parent_level: AreaLevel | None = None
        if row.parent_code in by_code:
            parent_level = by_code[row.parent_code].level
        elif row.parent_code in existing:
            parent_level = AreaLevel(existing[row.parent_code].level)
        if parent_level is None:
            problems.append(
                f"line {row.line}: parent_code {row.parent_code} is not in the file or the database"
            )
        elif _RANK[parent_level] >= _RANK[row.level]:
            problems.append(f"line {row.line}: a {row.level} cannot sit under a {parent_level}")
    if problems:
        raise AreaImportError(problems)

    created = updated = unchanged = 0
    # First pass: create/update without parents, so rows may come in any order.
    for row in rows:
        area = existing.get(row.code)
        if area is None:
            area = Area(code=row.code, name=row.name, level=row.level.value, timezone=row.timezone)
            session.add(area)
            existing[row.code] = area
            created += 1
        elif (area.name, area.level, area.timezone) != (
            row.name,
            row.level.value,
            row.timezone,
        ) or (row.parent_code != code_of_id.get(area.parent_id or 0)):
            area.name, area.level, area.timezone = row.name, row.level.value, row.timezone
            updated += 1
        else:
            unchanged += 1
    await session.flush()
    for row in rows:
        area = existing[row.code]
        area.parent_id = existing[row.parent_code].id if row.parent_code else None
    await session.flush()
    return ImportResult(created, updated, unchanged)


async def get_by_code(session: AsyncSession, code: str) -> Area | None:
    """The area with this code, or None."""
    return await session.scalar(select(Area).where(Area.code == code.strip()))


async def known_codes(session: AsyncSession, codes: Collection[str]) -> set[str]:
    """Which of these area codes exist."""
    return set((await session.scalars(select(Area.code).where(Area.code.in_(list(codes))))).all())


async def children(session: AsyncSession, area_id: int, limit: int) -> list[Area]:
    """The areas directly below this one, by name, at most ``limit``."""
    return list(
        (
            await session.scalars(
                select(Area).where(Area.parent_id == area_id).order_by(Area.name).limit(limit)
            )
        ).all()
    )


async def code_and_parent(session: AsyncSession, area_id: int) -> tuple[str, int | None] | None:
    """The area's code and its parent's id, or None when there is no such area."""
    row = (
        await session.execute(select(Area.code, Area.parent_id).where(Area.id == area_id))
    ).one_or_none()
    return None if row is None else (row.code, row.parent_id)


async def search_villages(session: AsyncSession, text: str, limit: int = 6) -> list[Area]:
    """Kelurahan/desa whose name contains the text (case-insensitive), best matches first."""
    needle = " ".join(text.split()).lower()
    for prefix in ("kelurahan ", "kel. ", "kel ", "desa ", "ds. ", "ds "):
        if needle.startswith(prefix):
            needle = needle[len(prefix) :]
    if len(needle) < 3:
        return []
    escaped = needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    stmt = (
        select(Area)
        .where(Area.level.in_(VILLAGE_LEVELS))
        .where(func.lower(Area.name).like(f"%{escaped}%", escape="\\"))
        .order_by(func.length(Area.name), Area.name)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def ancestors(session: AsyncSession, area: Area) -> list[Area]:
    """The area's parents, nearest first."""
    chain: list[Area] = []
    parent_id = area.parent_id
    while parent_id is not None and len(chain) < 10:
        parent = await session.get(Area, parent_id)
        if parent is None:
            break
        chain.append(parent)
        parent_id = parent.parent_id
    return chain


async def descendant_ids(session: AsyncSession, area_id: int) -> list[int]:
    """The area's id and the ids of every area below it."""
    ids = [area_id]
    frontier = [area_id]
    while frontier:
        children = (
            await session.scalars(select(Area.id).where(Area.parent_id.in_(frontier)))
        ).all()
        frontier = [c for c in children if c not in ids]
        ids.extend(frontier)
    return ids
