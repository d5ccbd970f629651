"""Stripping reports of what identifies people (UU PDP No. 27/2022), shared by retention and
erasure.

A report stays for the officers' record and the statistics (ticket, category, area, status,
times, who handled it) without the person: no reporter link, no followers, no words of theirs,
no exact place, nothing the Open311 system said about them. The caller says what replaces the
description (retention: "masa simpan berakhir"; erasure: "dihapus atas permintaan pelapor").
Media are the caller's to remove: their files must go from the media store after the rows.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Numeric, cast, delete, func, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Open311Request, Report, ReportEvent, ReportFollower

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
