"""Reports: creating them with their media and audit event, tickets, followers, lookups."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Area, Report, ReportEvent, ReportFollower, ReportMedia
from storage.types import ReportStatus

TICKET_PREFIX = "KTN-"
TICKET_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed on phones
TICKET_LENGTH = 6
_TICKET_TEXT = re.compile(r"^(?:KTN)?([A-Z0-9]{6})$")


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A file attached to a report, as the channel knows it."""

    kind: str
    channel: str
    file_ref: str
    content_type: str | None = None


def random_ticket() -> str:
    """A fresh ticket such as KTN-7QX4PA (not checked for uniqueness)."""
    return TICKET_PREFIX + "".join(secrets.choice(TICKET_ALPHABET) for _ in range(TICKET_LENGTH))


def normalise_ticket(text: str) -> str | None:
    """'ktn-7qx4pa', 'KTN 7QX4PA' or '7qx4pa' -> 'KTN-7QX4PA'; None if it cannot be a ticket."""
    cleaned = re.sub(r"[\s\-_.#]", "", text).upper()
    match = _TICKET_TEXT.match(cleaned)
    return TICKET_PREFIX + match.group(1) if match else None


async def new_ticket(session: AsyncSession, attempts: int = 10) -> str:
    """A ticket not used yet (a race with another insert is caught by the unique index)."""
    for _ in range(attempts):
        ticket = random_ticket()
        if await session.scalar(select(Report.id).where(Report.ticket == ticket)) is None:
            return ticket
    raise RuntimeError("could not find a free ticket id")  # pragma: no cover - 32^6 space


async def create_report(
    session: AsyncSession,
    *,
    category: str,
    description: str,
    area_id: int,
    reporter_id: int | None,
    anonymous: bool,
    urgent: bool,
    now: datetime,
    latitude: float | None = None,
    longitude: float | None = None,
    address_text: str | None = None,
    media: Iterable[MediaRef] = (),
    ticket: str | None = None,
) -> Report:
    """Insert a new report, its media and its 'created' event; flushed so the id is set."""
    report = Report(
        ticket=ticket or await new_ticket(session),
        category=category,
        description=description,
        latitude=latitude,
        longitude=longitude,
        address_text=address_text,
        area_id=area_id,
        reporter_id=reporter_id,
        anonymous=anonymous,
        urgent=urgent,
        status=ReportStatus.NEW.value,
        created_at=now,
        updated_at=now,
    )
    session.add(report)
    await session.flush()
    session.add(
        ReportEvent(
            report_id=report.id,
            kind="created",
            from_status=None,
            to_status=ReportStatus.NEW.value,
            actor_id=reporter_id,
            created_at=now,
        )
    )
    for item in media:
        session.add(
            ReportMedia(
                report_id=report.id,
                kind=item.kind,
                channel=item.channel,
                file_ref=item.file_ref,
                content_type=item.content_type,
                created_at=now,
            )
        )
    return report


async def get_by_ticket(session: AsyncSession, ticket: str) -> Report | None:
    """The report with this ticket, or None."""
    return await session.scalar(select(Report).where(Report.ticket == ticket))


async def open_duplicates(
    session: AsyncSession,
    *,
    area_id: int,
    category: str,
    since: datetime,
    exclude_reporter_id: int | None = None,
    limit: int = 1,
) -> list[Report]:
    """Open reports of the category in the area created since then, newest first."""
    stmt = (
        select(Report)
        .where(
            Report.area_id == area_id,
            Report.status.in_([s.value for s in ReportStatus if s.is_open]),
            Report.created_at >= since,
            Report.category == category,
        )
        .order_by(Report.created_at.desc(), Report.id.desc())
        .limit(limit)
    )
    if exclude_reporter_id is not None:
        stmt = stmt.where(
            or_(Report.reporter_id.is_(None), Report.reporter_id != exclude_reporter_id)
        )
    return list((await session.scalars(stmt)).all())


async def follow(session: AsyncSession, report_id: int, contact_id: int, now: datetime) -> bool:
    """Make the contact a follower of the report; False if they already were."""
    if await session.get(ReportFollower, (report_id, contact_id)) is not None:
        return False
    session.add(ReportFollower(report_id=report_id, contact_id=contact_id, created_at=now))
    return True


async def is_follower(session: AsyncSession, report_id: int, contact_id: int) -> bool:
    """Whether the contact follows the report."""
    return await session.get(ReportFollower, (report_id, contact_id)) is not None


async def reports_of(session: AsyncSession, contact_id: int, limit: int = 10) -> list[Report]:
    """The contact's own and followed reports, newest first."""
    followed = select(ReportFollower.report_id).where(ReportFollower.contact_id == contact_id)
    stmt = (
        select(Report)
        .where(or_(Report.reporter_id == contact_id, Report.id.in_(followed)))
        .order_by(Report.created_at.desc(), Report.id.desc())
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def areas_by_id(session: AsyncSession, ids: Sequence[int]) -> dict[int, Area]:
    """The areas with these ids, in one query."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = (await session.scalars(select(Area).where(Area.id.in_(wanted)))).all()
    return {a.id: a for a in rows}


async def media_of(session: AsyncSession, report_id: int) -> list[ReportMedia]:
    """The report's media, oldest first."""
    return list(
        (
            await session.scalars(
                select(ReportMedia)
                .where(ReportMedia.report_id == report_id)
                .order_by(ReportMedia.id)
            )
        ).all()
    )
