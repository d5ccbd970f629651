"""The outbox dispatcher: order, retries, give-up reasons, leases, edits, chat migration."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.outbox import ChannelLimits, Dispatcher, Envelope, SendError, SlidingWindow
from handlers.types import Reply
from storage.models import Area, Contact, GroupChat, Outbox
from storage.types import utcnow

GROUP = -1001234567890


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = utcnow() + timedelta(seconds=1)  # rows added during the test are due

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class Recorder:
    """A sender that records what it was asked to send and fails on cue."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []
        self.script: dict[str, list[SendError]] = {}
        self.next_id = 100

    async def send(self, envelope: Envelope) -> str | None:
        text = envelope.payload["reply"]["text"]
        failures = self.script.get(text)
        if failures:
            raise failures.pop(0)
        self.sent.append((envelope.chat_id, text))
        if envelope.edit_target:
            return envelope.edit_target
        self.next_id += 1
        return str(self.next_id)


def reply(text: str) -> dict[str, Any]:
    return {"reply": Reply(text).to_json()}


async def add_rows(sessions: async_sessionmaker[AsyncSession], *rows: Outbox) -> list[int]:
    async with sessions() as s:
        s.add_all(rows)
        await s.commit()
        return [r.id for r in rows]


async def statuses(
    sessions: async_sessionmaker[AsyncSession],
) -> dict[str, tuple[str, int, str | None]]:
    async with sessions() as s:
        rows = (await s.scalars(select(Outbox).order_by(Outbox.id))).all()
        return {r.payload["reply"]["text"]: (r.status, r.attempts, r.last_error) for r in rows}


def make(
    sessions: async_sessionmaker[AsyncSession],
    sender: Recorder,
    clock: Callable[[], datetime],
    **kw: Any,
) -> Dispatcher:
    return Dispatcher(sessions, {"telegram": sender}, {}, wall=clock, max_attempts=3, **kw)


def row(text: str, chat_id: int = 42, **kw: Any) -> Outbox:
    return Outbox(
        channel="telegram",
        chat_id=chat_id,
        kind=kw.pop("kind", "status"),
        payload=kw.pop("payload", None) or reply(text),
        **kw,
    )


async def test_sends_each_chat_in_order_and_never_twice(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sender, clock = Recorder(), Clock()
    await add_rows(
        sessions, *(row(f"a{i}", 1) for i in range(5)), *(row(f"b{i}", 2) for i in range(5))
    )
    dispatcher = make(sessions, sender, clock)
    assert await dispatcher.drain() == 10
    assert [t for c, t in sender.sent if c == 1] == [f"a{i}" for i in range(5)]
    assert [t for c, t in sender.sent if c == 2] == [f"b{i}" for i in range(5)]
    assert await dispatcher.drain() == 0
    assert len(sender.sent) == 10
    assert all(s == ("sent", 1, None) for s in (await statuses(sessions)).values())


async def test_transient_failure_retries_with_backoff_then_gives_up(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sender, clock = Recorder(), Clock()
    sender.script["flaky"] = [SendError("network: timed out")]
    sender.script["doomed"] = [SendError("network: down")] * 3
    await add_rows(sessions, row("flaky", 1), row("doomed", 2))
    dispatcher = make(sessions, sender, clock)
    await dispatcher.drain()
    assert (await statuses(sessions))["flaky"][:2] == ("pending", 1)
    assert await dispatcher.drain() == 0  # not due yet: backoff
    for _ in range(3):
        clock.advance(600)
        await dispatcher.drain()
    final = await statuses(sessions)
    assert final["flaky"] == ("sent", 2, None)
    assert final["doomed"] == ("failed", 3, "network: down")


async def test_retry_after_is_honoured_and_keeps_chat_order(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sender, clock = Recorder(), Clock()
    sender.script["first"] = [SendError("rate limited", retry_after=7)]
    await add_rows(sessions, row("first"), row("second"))
    dispatcher = make(sessions, sender, clock)
    await dispatcher.drain()
    assert sender.sent == []  # "second" waits behind "first"
    clock.advance(6)
    assert await dispatcher.drain() == 0
    clock.advance(1.5)
    dispatcher = make(sessions, sender, clock)  # a fresh limiter: the pause lives in the row too
    await dispatcher.drain()
    assert [t for _, t in sender.sent] == ["first", "second"]
    assert (await statuses(sessions))["first"] == ("sent", 1, None)  # a 429 is not a failed try


async def test_blocked_user_is_marked_and_not_retried(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sender, clock = Recorder(), Clock()
    sender.script["hello"] = [
        SendError("forbidden: bot was blocked by the user", permanent=True, blocked=True)
    ]
    async with sessions() as s:
        contact = Contact(channel="telegram", external_id=42, display_name="Sari")
        s.add(contact)
        await s.commit()
    await add_rows(sessions, row("hello", contact_id=contact.id))
    await make(sessions, sender, clock).drain()
    assert (await statuses(sessions))["hello"][0] == "failed"
    async with sessions() as s:
        refreshed = await s.get(Contact, contact.id)
        assert refreshed is not None and refreshed.blocked_at is not None


async def test_group_migration_moves_the_chat_id(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sender, clock = Recorder(), Clock()
    old, new = -4001, GROUP
    sender.script["alert"] = [SendError("group migrated", migrated_to=new)]
    async with sessions() as s:
        area = Area(code="17", name="Bengkulu", level="provinsi")
        s.add(area)
        await s.flush()
        s.add(GroupChat(channel="telegram", chat_id=old, area_id=area.id))
        await s.commit()
    await add_rows(sessions, row("alert", old, kind="alert"), row("later", old))
    await make(sessions, sender, clock).drain()
    assert sender.sent == [(new, "alert"), (new, "later")]
    async with sessions() as s:
        assert await s.scalar(select(GroupChat.chat_id)) == new


async def test_expired_lease_is_claimed_again(sessions: async_sessionmaker[AsyncSession]) -> None:
    sender, clock = Recorder(), Clock()
    await add_rows(
        sessions,
        row(
            "orphan",
            status="sending",
            lease_until=clock() - timedelta(seconds=1),
            claimed_by="dead-worker",
        ),
        row(
            "busy",
            7,
            status="sending",
            lease_until=clock() + timedelta(seconds=60),
            claimed_by="live-worker",
        ),
    )
    await make(sessions, sender, clock).drain()
    assert sender.sent == [(42, "orphan")]


async def test_edit_waits_for_original_and_only_newest_edit_is_sent(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    sender, clock = Recorder(), Clock()
    sender.script["alert"] = [SendError("network: down")]
    (alert_id,) = await add_rows(sessions, row("alert", GROUP, kind="alert"))
    await add_rows(
        sessions,
        row("claimed", GROUP, kind="alert_edit", payload={"edit_of": alert_id, **reply("claimed")}),
        row(
            "resolved", GROUP, kind="alert_edit", payload={"edit_of": alert_id, **reply("resolved")}
        ),
    )
    dispatcher = make(sessions, sender, clock)
    await dispatcher.drain()
    assert sender.sent == []
    clock.advance(600)
    await dispatcher.drain()
    assert sender.sent == [(GROUP, "alert"), (GROUP, "resolved")]
    assert (await statuses(sessions))["claimed"][0] == "sent"  # superseded, never shown


async def test_run_wakes_on_notify(sessions: async_sessionmaker[AsyncSession]) -> None:
    sender = Recorder()
    delivered = asyncio.Event()
    original = sender.send

    async def send(envelope: Envelope) -> str | None:
        result = await original(envelope)
        delivered.set()
        return result

    sender.send = send  # type: ignore[method-assign]
    dispatcher = Dispatcher(sessions, {"telegram": sender}, {}, sweep_seconds=3600)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    await add_rows(sessions, row("wake up"))
    dispatcher.notify()
    await asyncio.wait_for(delivered.wait(), timeout=5)
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert sender.sent == [(42, "wake up")]


def test_sliding_window_never_exceeds_limit() -> None:
    window = SlidingWindow(30, 1.0, margin=0.0)
    t, sent = 0.0, []
    while len(sent) < 300:
        t = window.next_free(t)
        window.start()
        window.finish(t)
        sent.append(t)
    assert max(sum(1 for s in sent if start <= s < start + 1.0) for start in sent) == 30
    assert sent[-1] == pytest.approx(9.0)


def test_channel_limits_distinguish_groups_and_private_chats() -> None:
    limits = ChannelLimits.rates(per_second=30, group_per_minute=20, chat_per_second=1)
    group = limits.for_chat(GROUP)
    private = limits.for_chat(42)
    assert group is not None and (group.limit, round(group.period)) == (20, 60)
    assert private is not None and (private.limit, round(private.period)) == (1, 1)
