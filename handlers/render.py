"""Small shared renderings: category and status names, times, emergency numbers, menus."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.config import CoreConfig
from handlers.i18n import Catalog
from handlers.types import Option
from storage.areas import ZONE_ABBREVIATION, ancestors
from storage.models import Area

DEFAULT_ZONE = "Asia/Jakarta"


def format_size(size: int) -> str:
    """Bytes as people read them: "16 MB", "1.5 MB", "200 KB"."""
    mb = size / (1024 * 1024)
    if mb >= 10:
        return f"{mb:.0f} MB"
    if mb >= 1:
        return f"{mb:.1f}".rstrip("0").rstrip(".") + " MB"
    return f"{max(1, round(size / 1024))} KB"


def category_label(catalog: Catalog, lang: str, key: str) -> str:
    """The category's name in the language ("Keamanan"); a key without a text is titled."""
    return catalog.get(lang, f"category.{key}") or key.replace("_", " ").title()


def description_text(catalog: Catalog, lang: str, description: str) -> str:
    """A report's story as this reader sees it: an erased reporter's marker (stored in the
    deployment's language, ``handlers.personal``) in the reader's language."""
    for other in catalog.languages:
        if description == catalog.text(other, "erase.marker"):
            return catalog.text(lang, "erase.marker")
    return description


def status_label(catalog: Catalog, lang: str, status: str) -> str:
    """The report status in words ("menunggu petugas")."""
    return catalog.get(lang, f"status.{status}") or status


def format_time(moment: datetime, zone: str | None = None) -> str:
    """'12/05/2025 10:30 WIB' in the area's time zone."""
    name = zone or DEFAULT_ZONE
    local = moment.astimezone(ZoneInfo(name))
    return f"{local:%d/%m/%Y %H:%M} {ZONE_ABBREVIATION.get(name, local.tzname() or '')}".strip()


def format_clock(moment: datetime, zone: str | None = None, since: datetime | None = None) -> str:
    """'19:05 WIB' in the area's time zone; with the date ('13/05 08:10 WIB') on another day."""
    name = zone or DEFAULT_ZONE
    tz = ZoneInfo(name)
    local = moment.astimezone(tz)
    abbreviation = ZONE_ABBREVIATION.get(name, local.tzname() or "")
    if since is not None and since.astimezone(tz).date() != local.date():
        return f"{local:%d/%m %H:%M} {abbreviation}".strip()
    return f"{local:%H:%M} {abbreviation}".strip()


def format_date(catalog: Catalog, lang: str, day: date | str) -> str:
    """A date the one way the language writes dates ('12/05/2025'); an ISO string is read."""
    when = date.fromisoformat(day) if isinstance(day, str) else day
    return catalog.text(lang, "common.date", day=when.day, month=when.month, year=when.year)


def map_link(latitude: float, longitude: float) -> str:
    """A link that opens the point in a map app (what residents see instead of numbers)."""
    return f"https://maps.google.com/?q={latitude:.5f},{longitude:.5f}"


def age_text(catalog: Catalog, lang: str, since: datetime, now: datetime) -> str:
    """How long ago, roughly: '5 mnt', '3 jam', '2 hari'."""
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return catalog.text(lang, "age.minutes", count=minutes)
    if minutes < 48 * 60:
        return catalog.text(lang, "age.hours", count=minutes // 60)
    return catalog.text(lang, "age.days", count=minutes // (24 * 60))


def category_options(config: CoreConfig, lang: str) -> list[Option]:
    """One option per configured category, in config order."""
    return [
        Option(category_label(config.catalog, lang, c.key), f"cat:{c.key}")
        for c in config.categories
    ]


async def polsek_number(
    session: AsyncSession, config: CoreConfig, area: Area | None
) -> tuple[str, str] | None:
    """(area name, phone) of the Polsek for the area or its nearest listed parent."""
    if area is None or not config.polsek_numbers:
        return None
    if area.code in config.polsek_numbers:
        return area.name, config.polsek_numbers[area.code]
    for parent in await ancestors(session, area):
        if parent.code in config.polsek_numbers:
            return parent.name, config.polsek_numbers[parent.code]
    return None


async def emergency_text(
    session: AsyncSession, config: CoreConfig, lang: str, area: Area | None
) -> str:
    """The emergency numbers, the area's Polsek first when known."""
    catalog = config.catalog
    lines = [catalog.text(lang, "emergency.header")]
    polsek = await polsek_number(session, config, area)
    if polsek is not None:
        lines.append(catalog.text(lang, "emergency.polsek_line", area=polsek[0], number=polsek[1]))
    for key, number in config.emergency_numbers.items():
        label = catalog.get(lang, f"number.{key}") or key.title()
        lines.append(catalog.text(lang, "emergency.line", label=label, number=number))
    lines.append(catalog.text(lang, "emergency.footer"))
    return "\n".join(lines)
