"""Retention: forgetting what is needed only for a while.

``processed_inbound`` gets one row per message handled, so that a redelivered update (Telegram
retries a webhook or repeats getUpdates within 24 hours; Twilio retries within minutes) is
answered once. Nothing needs a row after that, and the table would otherwise grow by every
message ever received. Rows are deleted in batches, each its own short transaction (SQLite has
one write lock; a million-row DELETE would hold it for seconds).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ProcessedInbound

BATCH = 5_000


async def forget_processed_inbound(
    session: AsyncSession, before: datetime, limit: int = BATCH
) -> int:
    """Delete up to ``limit`` dedupe records older than ``before``; returns how many."""
    oldest = (
        select(ProcessedInbound.channel, ProcessedInbound.external_id)
        .where(ProcessedInbound.processed_at < before)
        .limit(limit)
    )
    result = await session.execute(
        delete(ProcessedInbound)
        .where(tuple_(ProcessedInbound.channel, ProcessedInbound.external_id).in_(oldest))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
