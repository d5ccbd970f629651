"""The outbox dispatcher: order, retries, give-up reasons, leases, edits, chat migration."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery.dispatcher import BotSenders, Dispatcher, Envelope, SendError
from bot.delivery.windows import ChannelLimits, SlidingWindow
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


def test_sliding_window_counts_every_call_of_a_multi_call_send() -> None:
    """Alerts with a pin are two calls each: at most 5 calls in any 2 s, so 2 alerts a window."""
    window = SlidingWindow(5, 2.0, margin=0.0)
    t, calls = 0.0, []
    while len(calls) < 20:
        t = window.next_free(t, 2)
        window.start(2)
        window.finish(t, 2)
        calls += [t, t]
    assert max(sum(1 for c in calls if start <= c < start + 2.0) for start in calls) == 4
    assert calls[-1] == pytest.approx(8.0)
    # a send of more calls than the window holds waits for an empty window, then fills it
    assert window.next_free(t, 9) == pytest.approx(t + 2.0)
    window.start(9)
    window.finish(t + 2.0, 9)
    assert window.next_free(t + 2.0) == pytest.approx(t + 4.0)


def test_channel_limits_distinguish_groups_and_private_chats() -> None:
    limits = ChannelLimits.rates(per_second=30, group_per_minute=20, chat_per_second=1)
    group = limits.for_chat(GROUP)
    private = limits.for_chat(42)
    assert group is not None and (group.limit, round(group.period)) == (20, 60)
    assert private is not None and (private.limit, round(private.period)) == (1, 1)


class Hanging(Recorder):
    """A sender whose 'stuck' message never gets an answer (a half-open connection)."""

    def __init__(self) -> None:
        super().__init__()
        self.stuck = asyncio.Event()

    async def send(self, envelope: Envelope) -> str | None:
        if envelope.payload["reply"]["text"] == "stuck":
            self.stuck.set()
            await asyncio.Event().wait()  # never answered
        return await super().send(envelope)


async def test_a_send_that_never_answers_does_not_hang_the_shutdown(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """SIGTERM with a send in flight: it gets the grace, then goes back to pending for later."""
    sender, clock = Hanging(), Clock()
    await add_rows(sessions, row("fine", 1), row("stuck", 2))
    dispatcher = make(sessions, sender, clock, stop_grace=0.2)
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run(stop))
    await sender.stuck.wait()
    stop.set()
    await asyncio.wait_for(running, timeout=10)
    found = await statuses(sessions)
    assert found["stuck"][0] == "pending"  # not lost, not left claimed: sent again later
    assert found["fine"][0] == "sent"


async def test_a_sent_row_is_written_while_another_send_of_its_batch_hangs(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A row that went out is written within record_seconds, not when the batch's slowest send
    answers: its delivery status and the admins' view do not wait for a hung connection."""
    sender, clock = Hanging(), Clock()
    await add_rows(sessions, row("fine", 1), row("stuck", 2))
    written = asyncio.Event()

    class Noting(Dispatcher):
        async def _record(self, *args: Any) -> None:
            await super()._record(*args)
            written.set()

    dispatcher = Noting(
        sessions, {"telegram": sender}, {}, wall=clock, record_seconds=0.05, stop_grace=0.2
    )
    stop = asyncio.Event()
    running = asyncio.create_task(dispatcher.run(stop))
    try:
        await sender.stuck.wait()
        await asyncio.wait_for(written.wait(), timeout=10)
        found = await statuses(sessions)
        assert (found["fine"][0], found["stuck"][0]) == ("sent", "sending")  # stuck: still out
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=10)


async def test_recording_progress_while_the_last_sends_finish_does_not_stall_the_batch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Sent rows are recorded during a long batch; the batch's last sends finishing during that
    write must still end the batch (it once waited forever for a completion already seen)."""
    sender, clock = Recorder(), Clock()
    await add_rows(sessions, *(row(f"m{i}", 100 + i) for i in range(20)))
    dispatcher = make(sessions, sender, clock, record_seconds=0.0)
    assert await asyncio.wait_for(dispatcher.drain(), timeout=10) == 20
    assert all(s[0] == "sent" for s in (await statuses(sessions)).values())


class Gated(Recorder):
    """A recorder whose send of "last" waits until the test opens the gate."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def send(self, envelope: Envelope) -> str | None:
        if envelope.payload["reply"]["text"] == "last":
            await self.gate.wait()
        return await super().send(envelope)


async def test_the_last_send_ending_just_as_progress_is_written_still_ends_the_batch(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """The last send fails in the very step in which the batch loop returns from writing
    progress: the loop once saw that send as still in flight and then waited forever."""
    sender, clock = Gated(), Clock()
    sender.script["last"] = [SendError("502 Bad Gateway")]
    await add_rows(sessions, row("first", 1), row("last", 2))

    class OpensTheGateWhileRecording(Dispatcher):
        async def _record(self, *args: Any) -> None:
            await super()._record(*args)
            if not sender.gate.is_set():
                sender.gate.set()  # "last" is woken first, then this coroutine resumes
                await asyncio.sleep(0)

    dispatcher = OpensTheGateWhileRecording(
        sessions, {"telegram": sender}, {}, wall=clock, record_seconds=0.0
    )
    assert await asyncio.wait_for(dispatcher.drain(), timeout=10) == 2
    found = await statuses(sessions)
    assert (found["first"][0], found["last"][:2]) == ("sent", ("pending", 1))  # retried later


class Timed(Recorder):
    """A recorder that notes when (monotonic) each send started."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[float] = []

    async def send(self, envelope: Envelope) -> str | None:
        self.started.append(asyncio.get_running_loop().time())
        return await super().send(envelope)


async def test_each_row_goes_through_its_bot_and_an_unknown_bot_is_a_reason(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    a, b, clock = Recorder(), Recorder(), Clock()
    await add_rows(
        sessions,
        row("via a", 1, bot="bot_a"),
        row("via b", 1, bot="bot_b"),
        row("via gone", 2, bot="gone"),
        row("via a again", 1, bot="bot_a"),
    )
    senders = {"telegram": BotSenders({"bot_a": a, "bot_b": b})}
    dispatcher = Dispatcher(sessions, senders, {}, wall=clock, max_attempts=3)
    assert await dispatcher.drain() == 4
    assert [t for _c, t in a.sent] == ["via a", "via a again"]
    assert [t for _c, t in b.sent] == ["via b"]
    final = await statuses(sessions)
    assert final["via gone"] == ("failed", 1, "no bot 'gone' is configured")
    assert final["via b"] == ("sent", 1, None)


async def test_bots_send_at_once_even_when_one_bots_rows_were_written_first(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """A broadcast written area by area: bot_b's rows come after all of bot_a's, yet bot_b
    does not wait for bot_a's (rate-limited) rows: each bot's limit is used at the same time."""
    a, b = Timed(), Timed()
    await add_rows(
        sessions,
        *(row(f"a{i}", 1000 + i, bot="bot_a") for i in range(8)),
        *(row(f"b{i}", 2000 + i, bot="bot_b") for i in range(8)),
    )
    limits = {"telegram": ChannelLimits((4, 1.0))}  # 4 per second per bot
    senders = {"telegram": BotSenders({"bot_a": a, "bot_b": b})}
    dispatcher = Dispatcher(sessions, senders, limits, batch_size=8)
    assert await dispatcher.drain() == 16
    assert len(a.started) == len(b.started) == 8
    # bot_a needs a second window for its last four; bot_b began before that, not after.
    assert min(b.started) < max(a.started) - 0.5
    assert max(b.started) < max(a.started) + 0.5


class OddIds(Recorder):
    """A sender with a bug: for the row "odd" it answers a message id no column can hold."""

    async def send(self, envelope: Envelope) -> str | None:
        sent = await super().send(envelope)
        return ["not", "an", "id"] if envelope.payload["reply"]["text"] == "odd" else sent  # type: ignore[return-value]


async def test_an_outcome_that_cannot_be_written_fails_alone_and_the_others_are_recorded(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Writing the batch's outcomes together fails: they are written one by one, the row whose
    outcome cannot be written is given up with the reason, none is left claimed or sent again."""
    sender, clock = OddIds(), Clock()
    await add_rows(sessions, row("fine", 1), row("odd", 2), row("also fine", 3))
    dispatcher = make(sessions, sender, clock)
    assert await dispatcher.drain() == 3
    clock.advance(600)
    assert await dispatcher.drain() == 0
    assert len(sender.sent) == 3
    final = await statuses(sessions)
    assert final["fine"] == final["also fine"] == ("sent", 1, None)
    status, attempts, reason = final["odd"]
    assert (status, attempts) == ("failed", 1)
    assert reason is not None and reason.startswith("unexpected: outcome not recordable: ")
