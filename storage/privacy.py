"""Stripping reports of what identifies people (UU PDP No. 27/2022), shared by retention and
erasure.

A report stays for the officers' record and the statistics (ticket, category, area, status,
times, who handled it) without the person: no reporter link, no followers, no words of theirs,
no exact place, nothing the Open311 system said about them. The caller says what replaces the
description (retention: "masa simpan berakhir"; erasure: "dihapus atas permintaan pelapor").
Media are the caller's to remove: their files must go from the media store after the rows.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Numeric, cast, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import (
    Contact,
    Open311Request,
    PatrolMember,
    PatrolTeam,
    Report,
    ReportEvent,
    ReportFollower,
)

# Decimals an anonymised report's place keeps: about 1.1 km, enough for a map of the area.
PLACE_DIGITS = 2


async def anonymise_report_personal_fields(
    session: AsyncSession, report_ids: Collection[int], *, placeholder: str, now: datetime
) -> int:
    """Strip these reports of personal fields; returns how many reports were changed. The
    caller commits."""
    if not report_ids:
        return 0
    ids = list(report_ids)
    result = await session.execute(
        update(Report)
        .where(Report.id.in_(ids))
        .values(
            reporter_id=None,
            description=placeholder,
            address_text=None,
            resolution_note=None,
            latitude=func.round(cast(Report.latitude, Numeric), PLACE_DIGITS),
            longitude=func.round(cast(Report.longitude, Numeric), PLACE_DIGITS),
            personal_purged_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    await session.execute(delete(ReportFollower).where(ReportFollower.report_id.in_(ids)))
    # Notes are free text (a resolution note may name the person); who did what when stays.
    await session.execute(
        update(ReportEvent)
        .where(ReportEvent.report_id.in_(ids), ReportEvent.note.is_not(None))
        .values(note=None)
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(Open311Request)
        .where(Open311Request.report_id.in_(ids))
        .values(
            first_name=None,
            last_name=None,
            email=None,
            phone=None,
            device_id=None,
            account_id=None,
            linked_contact_id=None,
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


@dataclass
class Affected:
    """A contact to tell of a breach: how to reach them and why they are on the list."""

    contact_id: int
    channel: str
    display_name: str | None
    reasons: set[str] = field(default_factory=set)  # "report", "anonymous_report", "follow", "team"

    @property
    def only_anonymous(self) -> bool:
        """Known here only as the reporter of anonymous reports: not to be named."""
        return self.reasons == {"anonymous_report"}


async def contacts_to_notify(
    session: AsyncSession, area_ids: Sequence[int], since: datetime
) -> list[Affected]:
    """Contacts whose data a breach of these areas since ``since`` may have touched: who
    reported there or followed a report there since then, and the members of the areas' patrol
    teams. Erased contacts are left out (nothing of theirs is kept to leak)."""
    ids = list(area_ids)
    found: dict[int, Affected] = {}

    def add(rows: Sequence[Contact], reason: str) -> None:
        for c in rows:
            entry = found.setdefault(c.id, Affected(c.id, c.channel, c.display_name))
            entry.reasons.add(reason)

    live = Contact.erased_at.is_(None)
    for anonymous in (False, True):
        reporters = (
            select(Contact)
            .join(Report, Report.reporter_id == Contact.id)
            .where(
                live,
                Report.area_id.in_(ids),
                Report.created_at >= since,
                Report.anonymous.is_(anonymous),
            )
            .distinct()
        )
        add((await session.scalars(reporters)).all(), "anonymous_report" if anonymous else "report")
    followers = (
        select(Contact)
        .join(ReportFollower, ReportFollower.contact_id == Contact.id)
        .join(Report, Report.id == ReportFollower.report_id)
        .where(
            live,
            Report.area_id.in_(ids),
            or_(Report.created_at >= since, ReportFollower.created_at >= since),
        )
        .distinct()
    )
    add((await session.scalars(followers)).all(), "follow")
    members = (
        select(Contact)
        .join(PatrolMember, PatrolMember.contact_id == Contact.id)
        .join(PatrolTeam, PatrolTeam.id == PatrolMember.team_id)
        .where(live, PatrolTeam.area_id.in_(ids))
        .distinct()
    )
    add((await session.scalars(members)).all(), "team")
    return sorted(found.values(), key=lambda a: a.contact_id)
