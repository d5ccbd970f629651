"""Replies of several Bot API calls (an alert and its pin) through the outbox: the flood windows
count calls, and a retry after a partial send sends only the parts not yet sent.

Against the fake Bot API over real HTTP with the real PTB ``Bot``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot

from bot.channels.telegram.sender import TelegramSender
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.windows import ChannelLimits
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, FloodLimits, SentMessage, TelegramFake
from handlers.types import Location, Media, MediaKind, Option, Reply
from storage.models import Outbox
from storage.types import OutboxStatus, utcnow
from tests.support.telegram_fake import png

GROUP = -1001234567890
PIN = Location(-3.79, 102.25)
# Telegram's group window scaled down (20 per 60 s -> 5 per 2 s) on both sides, as in
# test_telegram_e2e, so the burst takes seconds.
FAKE_LIMITS = FloodLimits(per_bot=((30, 1.0),), per_group=((5, 2.0),), per_private=((1, 1.0),))
OUR_LIMITS = ChannelLimits((30, 1.0), group_window=(5, 2.0), chat_window=(1, 1.0))


class Clock:
    """A wall clock the test moves by hand (retries fall due without waiting)."""

    def __init__(self) -> None:
        self.now = utcnow() + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def fake() -> AsyncIterator[TelegramFake]:
    async with TelegramFake(flood_limits=FAKE_LIMITS) as fake:
        fake.add_group(GROUP, "Bhabin Sumber Jaya")
        yield fake


async def add_alerts(sessions: async_sessionmaker[AsyncSession], *replies: Reply) -> list[int]:
    async with sessions() as s:
        rows = [
            Outbox(channel="telegram", chat_id=GROUP, kind="alert", payload={"reply": r.to_json()})
            for r in replies
        ]
        s.add_all(rows)
        await s.commit()
        return [r.id for r in rows]


async def outbox_rows(sessions: async_sessionmaker[AsyncSession]) -> list[Outbox]:
    async with sessions() as s:
        return list((await s.scalars(select(Outbox).order_by(Outbox.id))).all())


def seen(messages: list[SentMessage]) -> list[str]:
    """What the group sees, message by message: the text, or 'pin' for a location."""
    return ["pin" if m.location else m.content for m in messages]


def dispatcher(sessions: async_sessionmaker[AsyncSession], bot: Bot, **kw: Any) -> Dispatcher:
    return Dispatcher(
        sessions, {"telegram": TelegramSender(bot, sessions)}, {"telegram": OUR_LIMITS}, **kw
    )


async def test_a_burst_of_alerts_with_pins_gets_no_429_and_no_duplicates(
    fake: TelegramFake, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The reviewer's burst: 6 alerts with a pin are 12 calls; the group window holds 5."""
    await add_alerts(sessions, *(Reply(f"Alert {i}", location=PIN) for i in range(6)))
    async with Bot(DEFAULT_TOKEN, base_url=fake.bot_api_url) as bot:
        assert await dispatcher(sessions, bot).drain() == 6
    assert fake.count_429 == 0
    messages = fake.messages(GROUP)
    assert seen(messages) == [x for i in range(6) for x in (f"Alert {i}", "pin")]
    rows = await outbox_rows(sessions)
    assert [(r.status, r.attempts) for r in rows] == [(OutboxStatus.SENT, 1)] * 6
    # the alert text (the message later edited), not its pin, is each row's message id
    assert [r.external_id for r in rows] == [str(m.message_id) for m in messages[::2]]


async def test_a_failed_pin_is_retried_alone_and_the_alert_stays_editable(
    fake: TelegramFake, sessions: async_sessionmaker[AsyncSession]
) -> None:
    """The alert text went out, its pin failed: the retry sends the pin only."""
    claim = Option("Tangani", "claim:1")
    [alert_id] = await add_alerts(sessions, Reply("Alert: kebakaran", (claim,), location=PIN))
    clock = Clock()
    fake.fail_next("sendLocation", 500)
    async with Bot(DEFAULT_TOKEN, base_url=fake.bot_api_url) as bot:
        outbox = dispatcher(sessions, bot, wall=clock)
        await outbox.drain()
        [row] = await outbox_rows(sessions)
        assert (row.status, row.attempts, row.external_id) == (OutboxStatus.PENDING, 1, None)
        assert seen(fake.messages(GROUP)) == ["Alert: kebakaran"]

        clock.now += timedelta(minutes=1)  # the retry falls due
        await outbox.drain()
        async with sessions() as s:  # an officer claims it: the alert is edited in place
            s.add(
                Outbox(
                    channel="telegram",
                    chat_id=GROUP,
                    kind="alert_edit",
                    payload={
                        "edit_of": alert_id,
                        "reply": Reply("Alert: kebakaran\n\nDitangani oleh Bripka Andi").to_json(),
                    },
                )
            )
            await s.commit()
        await outbox.drain()
    messages = fake.messages(GROUP)
    assert seen(messages) == ["Alert: kebakaran\n\nDitangani oleh Bripka Andi", "pin"]
    assert messages[0].edits and messages[0].button_data() == []
    alert, edit = await outbox_rows(sessions)
    assert (alert.status, alert.external_id) == (OutboxStatus.SENT, str(messages[0].message_id))
    assert edit.status == OutboxStatus.SENT


async def test_a_photo_alert_resumes_at_the_text_after_a_429(
    fake: TelegramFake, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """A photo whose text is too long for a caption: photo, text, pin (3 calls). A 429 on the
    text delays it; the photo is not sent again and the text keeps the buttons."""
    photo = tmp_path / "foto.png"
    photo.write_bytes(png(64, 48))
    text = "Alert: jalan rusak. " + ("Keterangan warga. " * 80).strip()
    claim = Option("Tangani", "claim:1")
    media = Media(MediaKind.PHOTO, str(photo), "image/png")
    await add_alerts(sessions, Reply(text, (claim,), media=media, location=PIN))
    clock = Clock()
    fake.fail_next("sendMessage", 429, retry_after=1)
    async with Bot(DEFAULT_TOKEN, base_url=fake.bot_api_url) as bot:
        outbox = dispatcher(sessions, bot, wall=clock)
        await outbox.drain()
        [row] = await outbox_rows(sessions)
        assert (row.status, row.last_error) == (OutboxStatus.PENDING, "rate limited")
        assert row.payload["tg_parts_sent"] == 1
        clock.now += timedelta(minutes=1)
        await outbox.drain()
    messages = fake.messages(GROUP)
    assert [m.kind for m in messages] == ["photo", "text", "location"]
    assert messages[1].content == text and messages[1].button_data() == ["claim:1"]
    [row] = await outbox_rows(sessions)
    assert (row.status, row.external_id) == (OutboxStatus.SENT, str(messages[1].message_id))


async def add_edit(sessions: async_sessionmaker[AsyncSession], alert_id: int, text: str) -> None:
    """An officer claimed the report: the core asks for the alert to be edited in place."""
    async with sessions() as s:
        reply = Reply(text, (Option("Selesai", "resolve:1"),))
        payload = {"edit_of": alert_id, "reply": reply.to_json()}
        s.add(Outbox(channel="telegram", chat_id=GROUP, kind="alert_edit", payload=payload))
        await s.commit()


@pytest.mark.parametrize(
    ("words", "where"),
    [(1, "the photo's caption"), (200, "the text after the photo")],
    ids=["caption", "too long for a caption"],
)
async def test_a_photo_alert_is_edited_where_its_text_is(
    fake: TelegramFake,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    words: int,
    where: str,
) -> None:
    """The sender recorded how the alert went out; the claim edits that message, whichever."""
    photo = tmp_path / "foto.png"
    photo.write_bytes(png(64, 48))
    text = "Alert: jalan rusak." + " Keterangan warga." * words
    media = Media(MediaKind.PHOTO, str(photo), "image/png")
    alert = Reply(text, (Option("Tangani", "claim:1"),), media=media)
    [alert_id] = await add_alerts(sessions, alert)
    async with Bot(DEFAULT_TOKEN, base_url=fake.bot_api_url) as bot:
        outbox = dispatcher(sessions, bot)
        await outbox.drain()
        await add_edit(sessions, alert_id, f"{text}\n\nDitangani oleh Bripka Andi")
        await outbox.drain()
    messages = fake.messages(GROUP)
    edited = messages[0] if where == "the photo's caption" else messages[1]
    assert [m for m in messages if m.edits] == [edited], where
    assert edited.content.endswith("Ditangani oleh Bripka Andi")
    assert edited.button_data() == ["resolve:1"]
    assert [r.status for r in await outbox_rows(sessions)] == [OutboxStatus.SENT] * 2


async def test_an_alert_sent_before_sends_recorded_its_form_is_still_edited(
    fake: TelegramFake, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> None:
    """A photo alert sent by an older version (nothing recorded about its caption) that is
    claimed after the upgrade: its caption is edited, as before."""
    photo = tmp_path / "foto.png"
    photo.write_bytes(png(64, 48))
    media = Media(MediaKind.PHOTO, str(photo), "image/png")
    [alert_id] = await add_alerts(sessions, Reply("Alert: pohon tumbang", media=media))
    async with Bot(DEFAULT_TOKEN, base_url=fake.bot_api_url) as bot:
        outbox = dispatcher(sessions, bot)
        await outbox.drain()
        async with sessions() as s:
            alert = await s.get_one(Outbox, alert_id)
            alert.payload = {"reply": alert.payload["reply"]}  # as the older version left it
            await s.commit()
        await add_edit(sessions, alert_id, "Alert: pohon tumbang\n\nDitangani oleh Bripka Andi")
        await outbox.drain()
    [message] = fake.messages(GROUP)
    assert message.kind == "photo" and message.edits
    assert message.content == "Alert: pohon tumbang\n\nDitangani oleh Bripka Andi"
