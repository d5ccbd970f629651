"""What became of outbox rows: the ones given up on, for admins to see and retry."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Outbox
from storage.types import OutboxStatus

UNDELIVERED = (OutboxStatus.FAILED, OutboxStatus.NEEDS_TEMPLATE, OutboxStatus.UNDELIVERED)


async def undelivered(session: AsyncSession, limit: int = 50) -> list[Outbox]:
    """Rows that will not be sent without help, newest first."""
    stmt = (
        select(Outbox).where(Outbox.status.in_(UNDELIVERED)).order_by(Outbox.id.desc()).limit(limit)
    )
    return list((await session.scalars(stmt)).all())


async def retry(session: AsyncSession, ids: Sequence[int] | None, now: datetime) -> int:
    """Put undelivered rows (these ids, or all when None) back in the queue; returns how many."""
    stmt = update(Outbox).where(Outbox.status.in_(UNDELIVERED))
    if ids is not None:
        stmt = stmt.where(Outbox.id.in_(ids))
    result = await session.execute(
        stmt.values(
            status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, lease_until=None
        ).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
