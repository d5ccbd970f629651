"""A broadcast delivered by the real dispatcher and PTB client to the fake Bot API (which answers
429 when Telegram's limits are exceeded): restarts never duplicate, 2,000 recipients get no 429."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot

from bot.channels.telegram.channel import send_request
from bot.channels.telegram.sender import TelegramSender
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.windows import ChannelLimits
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, TelegramFake
from handlers import broadcast
from storage import outbox as outbox_store
from storage.areas import get_by_code
from storage.models import Area, Broadcast, Contact, GroupChat, Outbox
from storage.types import Role
from tests.support.chats import KAMPUNG_MELAYU, SUMBER_JAYA, FakeChat, load_areas, make_invite

TELEGRAM = ChannelLimits.rates(30, 20, 1)  # the shipped defaults: nothing lowered
FIRST_RESIDENT = 500_000


async def village(
    sessions: async_sessionmaker[AsyncSession], residents: int, groups: int
) -> FakeChat:
    """Sumber Jaya with ``groups`` RW areas (one officers' group each) and ``residents``
    consented residents spread over them; returns the kecamatan's coordinator, onboarded."""
    rws = "".join(
        f"{SUMBER_JAYA}.{i:03d},RW {i:02d},rw,{SUMBER_JAYA},Asia/Jakarta\n" for i in range(groups)
    )
    await load_areas(sessions)
    if groups:
        await load_areas(sessions, "code,name,level,parent_code,timezone\n" + rws)
    now = datetime.now(UTC)
    async with sessions() as session:
        sumber = await get_by_code(session, SUMBER_JAYA)
        assert sumber is not None
        rw_ids = [
            a.id for a in (await session.scalars(select(Area).where(Area.parent_id == sumber.id)))
        ] or [sumber.id]
        for i, area_id in enumerate(rw_ids[:groups]):
            session.add(GroupChat(channel="telegram", chat_id=-100_000 - i, area_id=area_id))
        session.add_all(
            Contact(
                channel="telegram",
                external_id=FIRST_RESIDENT + i,
                area_id=rw_ids[i % len(rw_ids)],
                consent_at=now,
                language="id",
            )
            for i in range(residents)
        )
        await session.commit()
    coordinator = FakeChat(sessions, user_id=4003, name="Iptu Sari", now=now)
    code = await make_invite(sessions, Role.COORDINATOR, KAMPUNG_MELAYU)
    await coordinator.send(f"/daftar {code}")
    await coordinator.press("consent:yes")
    return coordinator


async def announce(coordinator: FakeChat, text: str = "Kerja bakti Minggu pagi 07.00") -> int:
    """The whole /umumkan flow to everyone under the kecamatan; returns the recipient count."""
    await coordinator.send("/umumkan")
    await coordinator.press("Kampung Melayu")
    await coordinator.press("bc:aud:both")
    await coordinator.send(text)
    done = await coordinator.press("Kirim")
    return int(done.recorded.broadcast["recipients"])


def dispatcher(sessions: async_sessionmaker[AsyncSession], bot: Bot) -> Dispatcher:
    """The real dispatcher with Telegram's limits, as ``ktn-bot run`` builds it."""
    return Dispatcher(sessions, {"telegram": TelegramSender(bot, sessions)}, {"telegram": TELEGRAM})


def recipients_of(fake: TelegramFake, chats: list[int]) -> Counter[int]:
    """How many messages each chat received."""
    return Counter({chat: len(fake.messages(chat)) for chat in chats})


def chats_of(residents: int, groups: int) -> list[int]:
    """The village's chats: residents' private chats, then the RW groups."""
    return [FIRST_RESIDENT + i for i in range(residents)] + [-100_000 - i for i in range(groups)]


@contextlib.asynccontextmanager
async def telegram(chats: list[int]) -> AsyncIterator[tuple[TelegramFake, Bot]]:
    """The fake Bot API with flood control, every resident started, the groups with the bot."""
    async with TelegramFake(flood=True) as fake:
        for chat in chats:
            if chat > 0:
                fake.start(chat)
            else:
                fake.add_group(chat, "Bhabin RW")
        # The HTTP client ``ktn-bot run`` sends with (64 connections, 15 s timeouts).
        async with Bot(DEFAULT_TOKEN, base_url=fake.bot_api_url, request=send_request()) as bot:
            yield fake, bot


async def wait_until_sent(fake: TelegramFake, count: int) -> None:
    """Wait for the fake to have received ``count`` messages (a stall fails within a minute)."""
    async with asyncio.timeout(60):
        while fake.sent_count < count:
            await fake.wait_change(5.0)


async def test_a_restart_in_the_middle_finishes_the_broadcast_without_duplicates(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    coordinator = await village(sessions, residents=90, groups=3)
    assert await announce(coordinator) == 93
    chats = chats_of(90, 3)
    async with telegram(chats) as (fake, bot):
        stop = asyncio.Event()
        first = asyncio.create_task(dispatcher(sessions, bot).run(stop))
        await wait_until_sent(fake, 40)
        stop.set()  # SIGTERM: the process stops in the middle of the broadcast
        await asyncio.wait_for(first, timeout=30)  # it finishes the sends in hand, then stops
        async with sessions() as session:
            pending = await session.scalar(
                select(func.count()).select_from(Outbox).where(Outbox.status == "pending")
            )
        assert pending and pending > 0, "the broadcast was meant to be cut short"
        # The restarted process counts the last minute's sends against the limits (without
        # that, its first second overruns the 30 msg/s window and the fake answers 429).
        await dispatcher(sessions, bot).drain()
        assert recipients_of(fake, chats) == Counter({chat: 1 for chat in chats})
        assert fake.count_429 == 0
    async with sessions() as session:
        statuses = (
            await session.scalars(select(Outbox.status).where(Outbox.broadcast_id.is_not(None)))
        ).all()
    assert Counter(statuses) == Counter({"sent": 93})


async def test_a_crash_while_writing_the_recipients_writes_nothing_and_kirim_works_again(
    sessions: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    coordinator = await village(sessions, residents=50, groups=0)
    await coordinator.send("/umumkan")
    await coordinator.press("Kampung Melayu")
    await coordinator.press("bc:aud:residents")
    await coordinator.send("Posyandu Rabu")
    written = 0
    real_enqueue = outbox_store.enqueue

    def failing_enqueue(*args: object, **kwargs: object) -> Outbox:
        nonlocal written
        written += 1
        if written == 25:
            raise RuntimeError("the process died here")
        return real_enqueue(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(broadcast.outbox, "enqueue", failing_enqueue)
    with pytest.raises(RuntimeError):
        await coordinator.press("Kirim")
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Outbox)) == 0
        assert await session.scalar(select(func.count()).select_from(Broadcast)) == 0
    monkeypatch.setattr(broadcast.outbox, "enqueue", real_enqueue)
    done = await coordinator.press("Kirim")  # the preview is still there
    assert done.recorded.broadcast["recipients"] == 50
    async with sessions() as session:
        keys = (await session.scalars(select(Outbox.dedupe_key))).all()
    assert len(keys) == len(set(keys)) == 50


@pytest.mark.pacing
async def test_two_thousand_recipients_get_no_429(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """~67 s: 2,000 messages at Telegram's 30 msg/s (1,992 private chats, 8 officers' groups)."""
    coordinator = await village(sessions, residents=1992, groups=8)
    assert await announce(coordinator) == 2000
    chats = chats_of(1992, 8)
    async with telegram(chats) as (fake, bot):
        await dispatcher(sessions, bot).drain()
        assert fake.count_429 == 0
        assert recipients_of(fake, chats) == Counter({chat: 1 for chat in chats})
