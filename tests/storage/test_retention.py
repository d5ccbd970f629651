"""Retention: dedupe records of handled messages are forgotten after their days, in batches;
what is recent is kept (a redelivery must still be answered once)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.database import Database
from bot.roles.duties import make_retention_job
from storage.models import ProcessedInbound
from storage.retention import forget_processed_inbound
from storage.types import utcnow


async def remembered(sessions: async_sessionmaker[AsyncSession]) -> set[str]:
    async with sessions() as s:
        return set((await s.scalars(select(ProcessedInbound.external_id))).all())


async def add_records(sessions: async_sessionmaker[AsyncSession], **ages_in_days: float) -> None:
    now = utcnow()
    async with sessions() as s:
        s.add_all(
            ProcessedInbound(
                channel="telegram" if i % 2 else "whatsapp",
                external_id=name,
                processed_at=now - timedelta(days=days),
            )
            for i, (name, days) in enumerate(ages_in_days.items())
        )
        await s.commit()


async def test_old_records_go_in_batches_and_recent_ones_stay(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    await add_records(sessions, a=30, b=20, c=9, d=8.5, e=6, f=0.01)
    before = utcnow() - timedelta(days=7)
    async with sessions() as s:
        assert await forget_processed_inbound(s, before, limit=3) == 3
        await s.commit()
    assert len(await remembered(sessions)) == 3
    async with sessions() as s:
        assert await forget_processed_inbound(s, before, limit=3) == 1
        assert await forget_processed_inbound(s, before, limit=3) == 0
        await s.commit()
    assert await remembered(sessions) == {"e", "f"}


async def test_the_leaders_job_forgets_everything_past_the_configured_days(
    engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]
) -> None:
    await add_records(sessions, **{f"old{i}": 3 + i / 100 for i in range(12)}, fresh=1)
    await make_retention_job(Database(engine, sessions), days=2)()
    assert await remembered(sessions) == {"fresh"}
