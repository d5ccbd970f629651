"""The real bot (`run`) against the fake Bot API: settings, a running bot, filing a report."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import run
from bot.config import DatabaseSettings, HttpSettings, Settings, TelegramSettings
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, FloodLimits, SentMessage, TelegramFake
from storage.areas import get_by_code
from storage.invites import create_invite
from storage.models import GroupChat
from storage.types import Role, utcnow
from tests.support.chats import SUMBER_JAYA, load_areas

GROUP = -1001234567890
BASIC_GROUP = -4001
RESIDENT = 501
WEBHOOK_SECRET = "s3cret-webhook-token"


@dataclass
class Running:
    fake: TelegramFake
    sessions: async_sessionmaker[AsyncSession]
    stop_event: asyncio.Event
    task: asyncio.Task[None]

    async def stop(self) -> None:
        """Stop the bot the way SIGTERM does, and wait until it has finished."""
        self.stop_event.set()
        await asyncio.wait_for(self.task, timeout=15)

    async def press(
        self, chat_id: int, user_id: int, label: str, message: SentMessage | None = None
    ) -> None:
        """Press the button with this label on the newest message that shows it."""
        candidates = [message] if message else reversed(self.fake.messages(chat_id))
        for msg in candidates:
            for button in msg.buttons():
                if button.get("text") == label:
                    self.fake.press_button(
                        chat_id, user_id, msg.message_id, button["callback_data"]
                    )
                    return
        raise AssertionError(f"no button {label!r} in chat {chat_id}")


def settings_for(
    fake: TelegramFake, db_url: str, tmp_path: Path, port: int = 0, **telegram: Any
) -> Settings:
    return Settings(
        data_dir=tmp_path,
        database=DatabaseSettings(url=db_url),
        telegram=TelegramSettings(
            base_url=fake.bot_api_url, base_file_url=fake.file_api_url, poll_timeout=1, **telegram
        ),
        http=HttpSettings(port=port),
        telegram_token=SecretStr(DEFAULT_TOKEN),
        telegram_webhook_secret=SecretStr(WEBHOOK_SECRET),
    )


async def link_alert_group(sessions: async_sessionmaker[AsyncSession]) -> None:
    """The sample areas, with the Sumber Jaya officers' group linked."""
    await load_areas(sessions)
    async with sessions() as s:
        area = await get_by_code(s, SUMBER_JAYA)
        assert area is not None
        s.add(
            GroupChat(
                channel="telegram", chat_id=GROUP, area_id=area.id, title="Bhabin Sumber Jaya"
            )
        )
        await s.commit()


def lenient_private_chats() -> FloodLimits:
    # The simulated resident answers instantly; a person takes seconds per step, so the
    # sustained 10-per-10-s private-chat window would only measure the test's own speed.
    return FloodLimits(per_private=((3, 1.0),))


@contextlib.asynccontextmanager
async def bot_running(
    fake: TelegramFake, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> AsyncIterator[Running]:
    """The real `run` in this loop until the block ends."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop))
    try:
        yield Running(fake, sessions, stop, task)
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=15)


@pytest.fixture
async def running(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[Running]:
    await link_alert_group(sessions)
    async with TelegramFake(flood_limits=lenient_private_chats()) as fake:
        fake.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        fake.add_user(RESIDENT, "Siti", "Aminah")
        async with bot_running(fake, settings_for(fake, migrated_url, tmp_path), sessions) as bot:
            yield bot


async def file_report(
    running: Running,
    user: int,
    text: str = "Motor tetangga hilang dari depan rumah",
    *,
    anonymous: bool = False,
    timeout: float = 5.0,  # noqa: ASYNC109 - per step, passed to the fake
    photo: bytes | None = None,
) -> str:
    """Walk one resident through /start, consent, /lapor ... Kirim (with a photo: ``photo``'s
    bytes, or the fake's placeholder); returns the confirmation."""
    fake = running.fake
    fake.start(user, payload=SUMBER_JAYA)
    await fake.wait_for_message(user, timeout=timeout, contains="27 Tahun 2022")
    await running.press(user, user, "Setuju")
    await fake.wait_for_message(user, timeout=timeout, contains="Sumber Jaya")
    fake.send_text(user, user, "/lapor")
    await fake.wait_for_message(
        user, timeout=timeout, predicate=lambda m: "Keamanan" in str(m.reply_markup)
    )
    await running.press(user, user, "Keamanan")
    await fake.wait_for_message(user, timeout=timeout)
    fake.send_text(user, user, text)
    await fake.wait_for_message(user, timeout=timeout)
    fake.send_location(user, user, -3.7956, 102.2592)
    await fake.wait_for_message(user, timeout=timeout)
    if photo is None:
        fake.send_photo(user, user)
    else:
        fake.send_photo(user, user, photo)
    await fake.wait_for_message(user, timeout=timeout, predicate=lambda m: bool(m.buttons()))
    await running.press(user, user, "Ya" if anonymous else "Tidak")
    await fake.wait_for_message(
        user, timeout=timeout, predicate=lambda m: "sum:send" in m.button_data()
    )
    await running.press(user, user, "Kirim")
    return (await fake.wait_for_message(user, timeout=timeout, contains="KTN-")).content


async def invite_code(sessions: async_sessionmaker[AsyncSession], role: Role, code: str) -> str:
    """What `ktn-bot invite` prints: a single-use code for a role in an area."""
    async with sessions() as s:
        area = await get_by_code(s, code)
        assert area is not None
        invite = await create_invite(
            s, role=role, area=area, valid_for=timedelta(days=1), now=utcnow()
        )
        await s.commit()
        return invite.code
