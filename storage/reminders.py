"""Reminders as rows: create, list, pause, delete, and claim one occurrence exactly once.

``reminders.cron`` keeps the canonical schedule (``handlers.schedule.Schedule.spec``) and
``reminders.schedule`` the coordinator's own words. ``last_fired_at`` is the watermark: every
occurrence up to it has been handled (sent, or skipped as too old). Moving it is a conditional
UPDATE in the same transaction as the outbox rows, so two workers, or a restart, never send one
occurrence twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Reminder

TARGETS = ("groups", "residents", "both")


async def create(
    session: AsyncSession,
    *,
    area_id: int,
    title: str,
    text: str,
    words: str,
    spec: str,
    target: str,
    template: str | None,
    created_by_id: int | None,
    now: datetime,
) -> Reminder:
    """Add a reminder (flushed, so it has an id)."""
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}")
    row = Reminder(
        area_id=area_id,
        title=title[:120],
        text=text,
        schedule=words[:120],
        cron=spec,
        target=target,
        template=template,
        paused=False,
        created_by_id=created_by_id,
        created_at=now,
    )
    session.add(row)
    await session.flush()
    return row


async def in_areas(session: AsyncSession, area_ids: Sequence[int]) -> list[Reminder]:
    """The reminders of these areas, oldest first."""
    stmt = select(Reminder).where(Reminder.area_id.in_(list(area_ids))).order_by(Reminder.id)
    return list((await session.scalars(stmt)).all())


async def active(session: AsyncSession, ids: Sequence[int] | None = None) -> list[Reminder]:
    """Reminders that are not paused (optionally only these ids)."""
    stmt = select(Reminder).where(Reminder.paused.is_(False)).order_by(Reminder.id)
    if ids is not None:
        stmt = stmt.where(Reminder.id.in_(list(ids)))
    return list((await session.scalars(stmt)).all())


async def advance(
    session: AsyncSession, reminder: Reminder, occurrence: datetime, until: datetime
) -> bool:
    """Move the watermark past ``occurrence`` to ``until`` unless another worker (or an earlier
    sweep) already did: the one caller that gets True handles the occurrences up to ``until``."""
    result = await session.execute(
        update(Reminder)
        .where(
            Reminder.id == reminder.id,
            Reminder.paused.is_(False),
            or_(Reminder.last_fired_at.is_(None), Reminder.last_fired_at < occurrence),
        )
        .values(last_fired_at=until)
        .execution_options(synchronize_session=False)
    )
    await session.refresh(reminder)
    return int(result.rowcount) == 1  # type: ignore[attr-defined]
