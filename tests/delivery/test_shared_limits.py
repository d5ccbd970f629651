"""Deployment-wide flood limits: three workers' dispatchers share one bot's 30/s and a group's
window, against the fake Bot API that answers 429 to any excess."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select
from telegram import Bot

from bot.channels.telegram.limited import LimitedRequest
from bot.channels.telegram.sender import TelegramSender
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.shared_limits import SharedLimiter
from bot.delivery.windows import ChannelLimits
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, FloodLimits, TelegramFake
from handlers.types import Reply
from storage.db import create_engine, is_sqlite, session_factory
from storage.models import Outbox
from storage.types import OutboxStatus

GROUP = -1009000
PRIVATE = range(20_000, 20_090)
LIMITS = ChannelLimits(overall_window=(30, 1.0), group_window=(4, 2.0))


@contextlib.asynccontextmanager
async def worker(url: str, fake: TelegramFake, index: int) -> AsyncIterator[Dispatcher]:
    """One worker's dispatcher: its own engine, its own PTB bot, the shared limiter."""
    engine = create_engine(url)
    limiter = SharedLimiter(engine, LIMITS)
    request = LimitedRequest(limiter, "7000000001", connection_pool_size=32)
    try:
        async with Bot(DEFAULT_TOKEN, base_url=fake.bot_api_url, request=request) as bot:
            yield Dispatcher(
                session_factory(engine),
                {"telegram": TelegramSender(bot, session_factory(engine))},
                {"telegram": LIMITS},  # each process alone keeps within the limits
                batch_size=40,
                worker_id=f"w{index}",
            )
    finally:
        await engine.dispose()


async def test_three_workers_together_stay_within_the_bot_and_group_limits(
    migrated_url: str,
) -> None:
    if is_sqlite(migrated_url):
        pytest.skip("several workers share limits through PostgreSQL (runs in the PG pass)")
    engine = create_engine(migrated_url)
    async with session_factory(engine)() as s:
        payload = {"reply": Reply("Pengumuman: kerja bakti Minggu pagi").to_json()}
        rows = [
            Outbox(channel="telegram", chat_id=chat, kind="broadcast", payload=payload)
            for chat in PRIVATE
        ]
        rows += [
            Outbox(channel="telegram", chat_id=GROUP, kind="broadcast", payload=payload)
            for _ in range(10)
        ]
        s.add_all(rows)
        await s.commit()

    limits = FloodLimits(per_bot=((30, 1.0),), per_group=((4, 2.0),))
    async with TelegramFake(flood_limits=limits) as fake:
        fake.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        for chat in PRIVATE:
            fake.start(chat)
        async with (
            worker(migrated_url, fake, 0) as a,
            worker(migrated_url, fake, 1) as b,
            worker(migrated_url, fake, 2) as c,
        ):
            handled = await asyncio.gather(a.drain(), b.drain(), c.drain())
        assert fake.count_429 == 0  # the deployment as a whole never exceeded a limit
        assert sum(1 for n in handled if n > 0) >= 2  # the work really was shared
        for chat in PRIVATE:
            assert len(fake.messages(chat)) == 1  # each exactly once
        assert len(fake.messages(GROUP)) == 10

    async with session_factory(engine)() as s:
        statuses = (await s.execute(select(Outbox.status))).scalars().all()
    await engine.dispose()
    assert set(statuses) == {OutboxStatus.SENT}
