"""storage.inbound: a message id is claimed once; its redelivery is recognised, also when two
arrive at once."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import inbound
from storage.models import ProcessedInbound
from storage.types import utcnow


async def claim(sessions: async_sessionmaker[AsyncSession], channel: str, key: str) -> bool:
    async with sessions() as s:
        claimed = await inbound.claim(s, channel, key, utcnow())
        await s.commit()
        return claimed


async def test_a_message_is_claimed_once_per_channel(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    assert await claim(sessions, "telegram", "default:42")
    assert not await claim(sessions, "telegram", "default:42")
    assert await claim(sessions, "whatsapp", "default:42")  # another channel's id space
    async with sessions() as s:
        rows = (await s.scalars(select(ProcessedInbound))).all()
    assert sorted((r.channel, r.external_id) for r in rows) == [
        ("telegram", "default:42"),
        ("whatsapp", "default:42"),
    ]


async def test_a_look_does_not_claim(sessions: async_sessionmaker[AsyncSession]) -> None:
    async with sessions() as s:
        assert not await inbound.handled(s, "whatsapp", "SM9")
    assert await claim(sessions, "whatsapp", "SM9")  # still new after the look
    async with sessions() as s:
        assert await inbound.handled(s, "whatsapp", "SM9")
        assert not await inbound.handled(s, "telegram", "SM9")


async def test_a_claim_rolled_back_leaves_the_message_new(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async with sessions() as s:
        assert await inbound.claim(s, "whatsapp", "SM1", utcnow())
        await s.rollback()  # handling failed: the redelivery must be handled
    assert await claim(sessions, "whatsapp", "SM1")


async def test_two_deliveries_at_once_are_claimed_once(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    results = await asyncio.gather(*(claim(sessions, "telegram", "default:7") for _ in range(5)))
    assert sorted(results) == [False] * 4 + [True]
