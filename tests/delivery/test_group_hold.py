"""A group whose flood window is full for long: its rows go back to the queue, due when the
window has room (visible to the core, which folds them into the group's board), and an urgent
alert written meanwhile goes out first (issue 18)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery.dispatcher import Dispatcher
from bot.delivery.windows import ChannelLimits
from storage.models import Outbox
from tests.delivery.test_dispatcher import GROUP, Clock, Recorder, add_rows, reply

LIMITS = ChannelLimits(overall_window=(1000, 1.0), group_window=(3, 60.0))


class Mono:
    """The dispatcher's monotonic clock: real time, plus what the test skips."""

    def __init__(self) -> None:
        self.skipped = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skipped


def alert(text: str, *, urgent: bool = False) -> Outbox:
    payload: dict[str, Any] = {**reply(text), "urgent": urgent}
    return Outbox(channel="telegram", chat_id=GROUP, kind="alert", payload=payload)


async def rows(sessions: async_sessionmaker[AsyncSession]) -> dict[str, tuple[str, int]]:
    async with sessions() as s:
        found = (await s.scalars(select(Outbox).order_by(Outbox.id))).all()
        return {r.payload["reply"]["text"]: (r.status, r.attempts) for r in found}


async def test_a_full_group_window_gives_rows_back_and_urgent_alerts_go_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sender, clock, mono = Recorder(), Clock(), Mono()
    dispatcher = Dispatcher(
        sessions,
        {"telegram": sender},
        {"telegram": LIMITS},
        wall=clock,
        monotonic=mono,
        hold_seconds=2.0,
    )
    await add_rows(sessions, *(alert(f"a{i}") for i in range(5)))
    await dispatcher.drain()  # returns at once: nothing waits a minute in the sender's hands
    assert [t for _, t in sender.sent] == ["a0", "a1", "a2"]
    state = await rows(sessions)
    assert state["a3"] == state["a4"] == ("pending", 0)  # back in the queue, no attempt counted
    async with sessions() as s:
        due = await s.scalars(select(Outbox.next_attempt_at).where(Outbox.status == "pending"))
        assert all(59 <= (d - clock.now).total_seconds() <= 61 for d in due.all())

    await add_rows(sessions, alert("URGENT", urgent=True))
    await dispatcher.drain()
    assert (await rows(sessions))["URGENT"] == ("pending", 0)  # the window is still full
    assert len(sender.sent) == 3

    clock.advance(61)
    mono.skipped += 61
    await dispatcher.drain()
    assert [t for _, t in sender.sent] == ["a0", "a1", "a2", "URGENT", "a3", "a4"]
    assert all(s == ("sent", 1) for s in (await rows(sessions)).values())


async def test_without_hold_the_sender_waits_in_memory_as_before(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Short waits (a private chat's second) are never given back."""
    sender, clock = Recorder(), Clock()
    limits = ChannelLimits(overall_window=(1000, 1.0), chat_window=(1, 0.2))
    dispatcher = Dispatcher(
        sessions, {"telegram": sender}, {"telegram": limits}, wall=clock, hold_seconds=2.0
    )
    await add_rows(
        sessions,
        *(
            Outbox(channel="telegram", chat_id=7, kind="status", payload=reply(f"s{i}"))
            for i in range(3)
        ),
    )
    await dispatcher.drain()
    assert [t for _, t in sender.sent] == ["s0", "s1", "s2"]
