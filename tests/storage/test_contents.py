"""The WhatsApp content cache: a SID once stored stays, a refusal never replaces it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import contents
from storage.types import utcnow

HASH = "ab" * 32
QR = "twilio/quick-reply"
FIRST, SECOND = "HX" + "01" * 16, "HX" + "02" * 16


async def test_the_first_sid_stored_stays_and_a_refusal_does_not_replace_it(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = utcnow()
    async with sessions() as s:
        assert await contents.find(s, HASH) is None
        assert await contents.save_sid(s, HASH, QR, FIRST, now) == FIRST
        await s.commit()
    async with sessions() as s:  # another worker made the same content meanwhile
        assert await contents.save_sid(s, HASH, QR, SECOND, now) == FIRST
        await contents.save_refusal(s, HASH, QR, "twilio 500/500: x", now, now)
        await s.commit()
    async with sessions() as s:
        row = await contents.find(s, HASH)
        assert row is not None
        assert (row.content_sid, row.refused, row.retry_at) == (FIRST, None, None)


async def test_a_refusal_is_kept_until_a_sid_replaces_it_and_forget_drops_only_that_sid(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = utcnow()
    later = now + timedelta(minutes=10)
    async with sessions() as s:
        await contents.save_refusal(s, HASH, QR, "twilio 503/503: " + "x" * 400, later, now)
        await s.commit()
    async with sessions() as s:
        row = await contents.find(s, HASH)
        assert row is not None and row.content_sid is None and row.retry_at == later
        assert len(row.refused or "") == 255
        assert await contents.save_sid(s, HASH, QR, FIRST, later) == FIRST
        await s.commit()
    async with sessions() as s:
        row = await contents.find(s, HASH)
        assert row is not None and (row.content_sid, row.refused) == (FIRST, None)
        await contents.forget(s, HASH, SECOND)  # not the stored one: nothing happens
        await s.commit()
        assert await contents.find(s, HASH) is not None
        await contents.forget(s, HASH, FIRST)
        await s.commit()
        assert await contents.find(s, HASH) is None
