"""Delivery status bookkeeping: forward only, repeats and reordering ignored, early callbacks held
until the dispatcher has recorded the SID."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.whatsapp.sender import SentLog
from bot.channels.whatsapp.status import Recorded, StatusBook
from handlers.types import Reply
from storage import outbox
from storage.models import Outbox
from storage.types import OutboxStatus

SID = "SM" + "1" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def book(sessions: async_sessionmaker[AsyncSession]) -> AsyncIterator[StatusBook]:
    clock = Clock()
    b = StatusBook(
        sessions, SentLog(clock=clock), hold_seconds=30, poll_seconds=0.02, monotonic=clock
    )
    yield b
    await b.close()


async def until_nothing_held(book: StatusBook) -> None:
    """Poll the book's held count down to 0 (up to 30 s on a loaded machine; no event to await)."""
    for _ in range(1500):
        if book.held == 0:
            return
        await asyncio.sleep(0.02)


async def make_row(
    sessions: async_sessionmaker[AsyncSession], status: str, sid: str | None = SID
) -> int:
    async with sessions() as s:
        row = outbox.enqueue(s, channel="whatsapp", chat_id=628123, kind="reply", reply=Reply("x"))
        row.status = status
        row.external_id = sid
        await s.commit()
        return row.id


async def status_of(sessions: async_sessionmaker[AsyncSession], row_id: int) -> Outbox:
    async with sessions() as s:
        row = await s.get(Outbox, row_id)
        assert row is not None
        return row


async def test_statuses_move_forward_only(
    book: StatusBook, sessions: async_sessionmaker[AsyncSession]
) -> None:
    row_id = await make_row(sessions, "sent")
    steps = [
        (OutboxStatus.SENT, Recorded.IGNORED),
        (OutboxStatus.DELIVERED, Recorded.APPLIED),
        (OutboxStatus.DELIVERED, Recorded.IGNORED),
        (OutboxStatus.SENT, Recorded.IGNORED),
        (OutboxStatus.READ, Recorded.APPLIED),
        (OutboxStatus.DELIVERED, Recorded.IGNORED),
        (OutboxStatus.FAILED, Recorded.IGNORED),
    ]
    for status, expected in steps:
        assert await book.record(SID, status, None) is expected, status
    row = await status_of(sessions, row_id)
    assert (row.status, row.last_error) == ("read", None) and row.status_at is not None


async def test_undelivered_is_final_and_keeps_the_error(
    book: StatusBook, sessions: async_sessionmaker[AsyncSession]
) -> None:
    row_id = await make_row(sessions, "sent")
    assert await book.record(SID, OutboxStatus.UNDELIVERED, "63016") is Recorded.APPLIED
    assert await book.record(SID, OutboxStatus.READ, None) is Recorded.IGNORED
    assert await book.record(SID, OutboxStatus.DELIVERED, None) is Recorded.IGNORED
    row = await status_of(sessions, row_id)
    assert row.status == "undelivered"
    assert (
        row.last_error == "twilio 63016: outside the 24-hour window: a Content Template is needed"
    )


async def test_concurrent_callbacks_in_any_order_end_at_the_furthest(
    book: StatusBook, sessions: async_sessionmaker[AsyncSession]
) -> None:
    row_id = await make_row(sessions, "sent")
    callbacks = [OutboxStatus.SENT, OutboxStatus.DELIVERED, OutboxStatus.READ] * 4
    random.Random(3).shuffle(callbacks)
    results = await asyncio.gather(*(book.record(SID, s, None) for s in callbacks))
    assert results.count(Recorded.APPLIED) <= 2
    assert (await status_of(sessions, row_id)).status == "read"


async def test_an_unknown_sid_or_a_queued_again_row_changes_nothing(
    book: StatusBook, sessions: async_sessionmaker[AsyncSession]
) -> None:
    assert await book.record("SM" + "9" * 32, OutboxStatus.DELIVERED, None) is Recorded.UNKNOWN
    row_id = await make_row(sessions, "pending")  # an admin queued it again: old news
    assert await book.record(SID, OutboxStatus.DELIVERED, None) is Recorded.IGNORED
    assert (await status_of(sessions, row_id)).status == "pending"


async def test_a_callback_before_the_dispatcher_recorded_the_sid_is_held(
    book: StatusBook, sessions: async_sessionmaker[AsyncSession]
) -> None:
    row_id = await make_row(sessions, "sending", sid=None)  # sent, not recorded yet
    book.sent_log.add(SID, row_id)
    assert await book.record(SID, OutboxStatus.DELIVERED, None) is Recorded.HELD
    assert await book.record(SID, OutboxStatus.SENT, None) is Recorded.HELD
    await asyncio.sleep(0.1)
    assert book.held == 1 and (await status_of(sessions, row_id)).status == "sending"
    async with sessions() as s:  # the dispatcher records its batch
        row = await s.get(Outbox, row_id)
        assert row is not None
        row.status, row.external_id = "sent", SID
        await s.commit()
    await until_nothing_held(book)
    assert book.held == 0 and (await status_of(sessions, row_id)).status == "delivered"


async def test_held_statuses_expire(
    book: StatusBook, sessions: async_sessionmaker[AsyncSession]
) -> None:
    row_id = await make_row(sessions, "sending", sid=None)
    book.sent_log.add(SID, row_id)
    assert await book.record(SID, OutboxStatus.DELIVERED, None) is Recorded.HELD
    assert isinstance(book.sent_log.clock, Clock)
    book.sent_log.clock.now += 31  # the same clock drives the hold
    await until_nothing_held(book)
    assert book.held == 0 and (await status_of(sessions, row_id)).status == "sending"


async def test_a_sid_we_do_not_know_yet_gets_a_short_grace(
    book: StatusBook, sessions: async_sessionmaker[AsyncSession]
) -> None:
    row_id = await make_row(sessions, "sending", sid=None)
    # The callback overtook the answer to our own request: the SID is not in the log yet.
    assert await book.record(SID, OutboxStatus.READ, None) is Recorded.UNKNOWN
    async with sessions() as s:
        row = await s.get(Outbox, row_id)
        assert row is not None
        row.status, row.external_id = "sent", SID
        await s.commit()
    await until_nothing_held(book)
    assert (await status_of(sessions, row_id)).status == "read"
    other = "SM" + "2" * 32  # a part of a split message: no row ever has it
    assert await book.record(other, OutboxStatus.DELIVERED, None) is Recorded.UNKNOWN
    assert isinstance(book.sent_log.clock, Clock)
    book.sent_log.clock.now += 31
    await until_nothing_held(book)
    assert book.held == 0
