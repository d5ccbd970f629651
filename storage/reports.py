"""Reports: creating them with their media and audit event, tickets, followers, lookups."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Area, Contact, Report, ReportEvent, ReportFollower, ReportMedia
from storage.types import ReportStatus

TICKET_PREFIX = "KTN-"
TICKET_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud, typed on phones
TICKET_LENGTH = 6
_TICKET_TEXT = re.compile(r"^(?:KTN)?([A-Z0-9]{6})$")


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A file attached to a report: ``file_ref`` as the report keeps it (the media store's
    ``sha256:<hex>``, which ``store_ref`` repeats; before the store, a channel's file id)."""

    kind: str
    channel: str
    file_ref: str
    content_type: str | None = None
    store_ref: str | None = None
    size: int | None = None
    origin: str | None = None  # the channel's own deletable copy (a Twilio media URL)


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
                store_ref=item.store_ref,
                size=item.size,
                origin=item.origin,
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


async def areas_by_id(session: AsyncSession, ids: Iterable[int]) -> dict[int, Area]:
    """The areas with these ids, in one query."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = (await session.scalars(select(Area).where(Area.id.in_(wanted)))).all()
    return {a.id: a for a in rows}


REPORT_MEDIA = "report"  # ReportMedia.purpose: sent with the report
CLOSURE_MEDIA = "closure"  # the officer's proof of closure


async def media_of(
    session: AsyncSession, report_id: int, purpose: str = REPORT_MEDIA
) -> list[ReportMedia]:
    """The report's media of this purpose (its own files, or closure photos), oldest first."""
    return list(
        (
            await session.scalars(
                select(ReportMedia)
                .where(ReportMedia.report_id == report_id, ReportMedia.purpose == purpose)
                .order_by(ReportMedia.id)
            )
        ).all()
    )


def add_closure_media(session: AsyncSession, report_id: int, item: MediaRef, now: datetime) -> None:
    """Keep the officer's closure photo with the report."""
    session.add(
        ReportMedia(
            report_id=report_id,
            kind=item.kind,
            channel=item.channel,
            file_ref=item.file_ref,
            content_type=item.content_type,
            store_ref=item.store_ref,
            size=item.size,
            created_at=now,
            purpose=CLOSURE_MEDIA,
        )
    )


OPEN_STATUSES = tuple(s.value for s in ReportStatus if s.is_open)


def add_event(
    session: AsyncSession,
    report_id: int,
    kind: str,
    now: datetime,
    *,
    actor_id: int | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    note: str | None = None,
    via: str | None = None,
) -> ReportEvent:
    """Add one line of the report's audit trail (``via``: where, when not in a chat)."""
    event = ReportEvent(
        report_id=report_id,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        actor_id=actor_id,
        note=note,
        created_at=now,
        via=via,
    )
    session.add(event)
    return event


async def _update_if(
    session: AsyncSession,
    report: Report,
    conditions: Sequence[ColumnElement[bool]],
    values: Mapping[str, Any],
) -> bool:
    """Update the report only if it still meets the conditions (a conditional UPDATE: one
    worker wins, a change made meanwhile is not overwritten); the object is refreshed either
    way. True when this update took."""
    result = await session.execute(
        update(Report)
        .where(Report.id == report.id, *conditions)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(report)
    return int(result.rowcount) == 1  # type: ignore[attr-defined]


async def change_status(
    session: AsyncSession,
    report: Report,
    to_status: ReportStatus,
    *,
    actor_id: int,
    now: datetime,
    note: str | None = None,
    duplicate_of_id: int | None = None,
    via: str | None = None,
) -> bool:
    """Move the report on, only if nobody changed it since it was read; False if someone did.

    A conditional UPDATE (status and assignee as read): of two officers pressing at once exactly
    one wins, on SQLite and PostgreSQL. The report is refreshed either way; an event is added.
    Reopening (by the reporter, or by staff on the desk) keeps the assignee and the last note,
    and clears ``closed_at`` and the report a duplicate was merged into; a duplicate records the
    report it was merged into.
    """
    from_status = report.status
    values: dict[str, object] = {"status": to_status.value, "updated_at": now}
    if to_status is ReportStatus.CLAIMED:
        values.update(assignee_id=actor_id, claimed_at=now)
    elif to_status is ReportStatus.REOPENED:
        values.update(closed_at=None, duplicate_of_id=None)
    elif to_status is ReportStatus.DUPLICATE:
        values.update(closed_at=now, duplicate_of_id=duplicate_of_id)
    else:
        values.update(
            closed_at=now, resolution_note=note, assignee_id=report.assignee_id or actor_id
        )
    same_assignee = (
        Report.assignee_id.is_(None)
        if report.assignee_id is None
        else Report.assignee_id == report.assignee_id
    )
    if not await _update_if(session, report, (Report.status == from_status, same_assignee), values):
        return False
    add_event(
        session,
        report.id,
        to_status.value,
        now,
        actor_id=actor_id,
        from_status=from_status,
        to_status=to_status.value,
        note=note,
        via=via,
    )
    return True


async def count_events(session: AsyncSession, report_id: int, kind: str) -> int:
    """How many events of this kind the report's trail has."""
    found = await session.scalar(
        select(func.count())
        .select_from(ReportEvent)
        .where(ReportEvent.report_id == report_id, ReportEvent.kind == kind)
    )
    return int(found or 0)


async def status_round(session: AsyncSession, report_id: int, status: str) -> str:
    """'' the first time the report reached this status, ':2' the second time (a claim offered
    back and claimed again), ...: keeps the news of each time apart in dedupe keys."""
    times = await times_moved_to(session, report_id, status)
    return f":{times}" if times > 1 else ""


async def last_actor_id(session: AsyncSession, report_id: int, status: str) -> int | None:
    """Who last moved the report to this status (None if nobody or erased)."""
    return await session.scalar(
        select(ReportEvent.actor_id)
        .where(ReportEvent.report_id == report_id, ReportEvent.to_status == status)
        .order_by(ReportEvent.id.desc())
        .limit(1)
    )


async def times_moved_to(session: AsyncSession, report_id: int, status: str) -> int:
    """How often the report was moved to this status (its news and edits are keyed by it)."""
    found = await session.scalar(
        select(func.count())
        .select_from(ReportEvent)
        .where(ReportEvent.report_id == report_id, ReportEvent.to_status == status)
    )
    return int(found or 0)


async def events_of(session: AsyncSession, report_id: int) -> list[ReportEvent]:
    """The report's trail, oldest first."""
    stmt = (
        select(ReportEvent)
        .where(ReportEvent.report_id == report_id)
        .order_by(ReportEvent.created_at, ReportEvent.id)
    )
    return list((await session.scalars(stmt)).all())


async def last_event(
    session: AsyncSession, report_id: int, kinds: Sequence[str]
) -> ReportEvent | None:
    """The newest event of these kinds, or None."""
    stmt = (
        select(ReportEvent)
        .where(ReportEvent.report_id == report_id, ReportEvent.kind.in_(list(kinds)))
        .order_by(ReportEvent.id.desc())
        .limit(1)
    )
    return await session.scalar(stmt)


async def take_over_followers(
    session: AsyncSession, source: Report, target: Report, now: datetime
) -> int:
    """The source's reporter and followers follow the target from now on (its own reporter
    excepted); how many new followers it got."""
    people = [f.id for f in await followers_of(session, source.id)]
    if source.reporter_id is not None:
        people.insert(0, source.reporter_id)
    added = 0
    for contact_id in dict.fromkeys(people):
        if contact_id == target.reporter_id:
            continue
        if await follow(session, target.id, contact_id, now):
            added += 1
    return added


async def count_area_events(
    session: AsyncSession, area_ids: Sequence[int], kind: str, start: datetime, end: datetime
) -> int:
    """How many events of this kind the reports of these areas had in [start, end)."""
    found = await session.scalar(
        select(func.count())
        .select_from(ReportEvent)
        .join(Report, Report.id == ReportEvent.report_id)
        .where(
            Report.area_id.in_(list(area_ids)),
            ReportEvent.kind == kind,
            ReportEvent.created_at >= start,
            ReportEvent.created_at < end,
        )
    )
    return int(found or 0)


async def open_in_areas(
    session: AsyncSession, area_ids: Sequence[int], limit: int = 20
) -> tuple[list[Report], int]:
    """Open reports (new, claimed) of these areas, oldest first, and how many there are."""
    where = (Report.area_id.in_(list(area_ids)), Report.status.in_(OPEN_STATUSES))
    total = await session.scalar(select(func.count()).select_from(Report).where(*where))
    stmt = select(Report).where(*where).order_by(Report.created_at, Report.id).limit(limit)
    return list((await session.scalars(stmt)).all()), int(total or 0)


# The event of a report whose escalation failed (``handlers.escalation``): it is not tried again.
ESCALATION_FAILED = "escalate_failed"  # report_events.kind holds 16 characters


async def due_for_escalation(session: AsyncSession, now: datetime, limit: int) -> list[Report]:
    """Unclaimed reports whose next escalation step is due and whose escalation did not fail
    before (a report that reached the top has no ``escalate_at`` any more)."""
    failed = select(ReportEvent.id).where(
        ReportEvent.report_id == Report.id, ReportEvent.kind == ESCALATION_FAILED
    )
    stmt = (
        select(Report)
        .where(
            Report.status == ReportStatus.NEW.value,
            Report.escalate_at <= now,
            ~failed.exists(),
        )
        .order_by(Report.escalate_at, Report.id)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def mark_escalated(
    session: AsyncSession,
    report: Report,
    now: datetime,
    *,
    level: int,
    next_at: datetime | None,
) -> bool:
    """Move the report's escalation from the level read to ``level`` (``escalated_at`` keeps
    the first step's time) and set its next step's time, unless it was claimed meanwhile or
    another worker took this step (conditional UPDATE); False then. ``level`` = the level
    read: the escalation stops here (nobody above), ``next_at`` None."""
    conditions = (
        Report.status == ReportStatus.NEW.value,
        Report.escalation_level == report.escalation_level,
        Report.escalate_at <= now,
    )
    values = {
        "escalation_level": level,
        "escalate_at": next_at,
        "escalated_at": func.coalesce(Report.escalated_at, now)
        if level > report.escalation_level
        else Report.escalated_at,
    }
    return await _update_if(session, report, conditions, values)


# --- claims that do not rot (handlers.claims) ------------------------------------------------


async def open_claims_of(session: AsyncSession, contact_id: int) -> list[Report]:
    """The reports the contact claimed and has not closed yet, oldest claim first."""
    stmt = (
        select(Report)
        .where(Report.assignee_id == contact_id, Report.status == ReportStatus.CLAIMED.value)
        .order_by(Report.claimed_at, Report.id)
    )
    return list((await session.scalars(stmt)).all())


async def idle_claims(session: AsyncSession, before: datetime, limit: int) -> list[Report]:
    """Claimed reports with no update since ``before``, the longest idle first."""
    stmt = (
        select(Report)
        .where(Report.status == ReportStatus.CLAIMED.value, Report.updated_at <= before)
        .order_by(Report.updated_at, Report.id)
        .limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def release_claim(
    session: AsyncSession, report: Report, now: datetime, *, before: datetime, escalate_at: datetime
) -> bool:
    """Give an idle claim back: the report is new again, nobody's, and escalates afresh from
    ``escalate_at``; only if it is still claimed by the same officer and still idle
    (conditional UPDATE: one worker, and not after a last-minute update). False otherwise."""
    if report.assignee_id is None:
        return False
    conditions = (
        Report.status == ReportStatus.CLAIMED.value,
        Report.assignee_id == report.assignee_id,
        Report.updated_at <= before,
    )
    values = {
        "status": ReportStatus.NEW.value,
        "assignee_id": None,
        "claimed_at": None,
        "updated_at": now,
        "escalation_level": 0,
        "escalate_at": escalate_at,
    }
    return await _update_if(session, report, conditions, values)


async def followers_of(session: AsyncSession, report_id: int) -> list[Contact]:
    """The contacts who follow the report, oldest follower first."""
    stmt = (
        select(Contact)
        .join(ReportFollower, ReportFollower.contact_id == Contact.id)
        .where(ReportFollower.report_id == report_id)
        .order_by(ReportFollower.created_at, Contact.id)
    )
    return list((await session.scalars(stmt)).all())


async def created_before(
    session: AsyncSession, area_ids: Sequence[int], end: datetime
) -> list[Report]:
    """The reports of these areas created before ``end``."""
    return list(
        (
            await session.scalars(
                select(Report).where(Report.area_id.in_(area_ids), Report.created_at < end)
            )
        ).all()
    )
