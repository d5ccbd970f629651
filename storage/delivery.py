"""What became of outbox rows: the ones given up on, for admins to see and retry, and the
delivery statuses a channel reports later (WhatsApp's status callbacks)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

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


async def status_of(
    session: AsyncSession, channel: str, external_id: str
) -> tuple[int, str] | None:
    """(row id, status) of the channel's row recorded with this message id, or None."""
    row = (
        await session.execute(
            select(Outbox.id, Outbox.status).where(
                Outbox.external_id == external_id, Outbox.channel == channel
            )
        )
    ).first()
    return None if row is None else (row.id, row.status)


async def move_status(
    session: AsyncSession,
    outbox_id: int,
    status: str,
    *,
    allowed: Collection[str],
    at: datetime,
    last_error: str | None = None,
) -> bool:
    """Set the row's status if it is one of ``allowed`` now (one conditional UPDATE: callbacks at
    once cannot move it backwards); the error, when given, too. Whether it moved. Caller
    commits."""
    values: dict[str, Any] = {"status": status, "status_at": at}
    if last_error is not None:
        values["last_error"] = last_error
    result = await session.execute(
        update(Outbox)
        .where(Outbox.id == outbox_id, Outbox.status.in_(allowed))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def recorded(session: AsyncSession, channel: str, external_ids: Sequence[str]) -> set[str]:
    """Which of these message ids the channel's rows have recorded by now (one query)."""
    found = await session.scalars(
        select(Outbox.external_id).where(
            Outbox.external_id.in_(external_ids), Outbox.channel == channel
        )
    )
    return {sid for sid in found.all() if sid is not None}
