"""`run` in webhook mode with WhatsApp on, its two fakes and the database (adversarial tests)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import run
from bot.config import (
    DatabaseSettings,
    HttpSettings,
    OutboxSettings,
    Settings,
    TelegramSettings,
    WhatsAppSettings,
)
from bot.sandbox.telegram_fake import DEFAULT_TOKEN, TelegramFake
from bot.sandbox.twilio_fake import DEFAULT_SENDER, TwilioFake
from storage.models import Contact, Outbox, ProcessedInbound, Report
from tests.support.chats import (
    ALERT_GROUP,
    KAMPUNG_MELAYU,
    SUMBER_JAYA,
    link_group,
    load_areas,
)
from tests.support.net import free_port, until_healthy
from tests.support.telegram_run import WEBHOOK_SECRET, Running, lenient_private_chats

log = logging.getLogger(__name__)


FAKES = (
    "bot.sandbox.telegram_fake",
    "bot.sandbox.twilio_fake",
)  # Telegram's and Twilio's side, not the bot


GROUP = ALERT_GROUP  # Sumber Jaya's officers' group
PARENT_GROUP = -1009000000017  # Kampung Melayu's group: where escalations go
WA_REPORTER = "+6281377712345"
WA_NAME = "Wiryo Sukamto"
TG_REPORTER = 7300000123
TG_FIRST, TG_LAST = "Ratna", "Kusumawati"
WA_OFFICER = "+6281311112222"
OFFICER = 4001
COORDINATOR = 4003


@dataclass
class Live:
    """`run` in webhook mode with WhatsApp on, its two fakes, and the database."""

    telegram: TelegramFake
    twilio: TwilioFake
    sessions: async_sessionmaker[AsyncSession]
    url: str
    running: Running  # the same run, as the Telegram helpers (telegram_run) drive it

    @property
    def telegram_hook(self) -> str:
        return self.url + "/telegram/webhook"

    @property
    def whatsapp_hook(self) -> str:
        return self.url + "/whatsapp/inbound"

    async def say(self, number: str, body: str, name: str = WA_NAME) -> str:
        """A WhatsApp message from the number; the bot's next message to it."""
        return await self.deliver(number, self.twilio.inbound_text(number, body, name))

    async def deliver(self, number: str, form: dict[str, str]) -> str:
        """A prepared WhatsApp webhook form (a photo, a pin) posted; the bot's next message."""
        before = len(self.twilio.messages_to(number))
        response = await self.twilio.post_inbound(self.whatsapp_hook, form)
        assert response.status_code == 200, response.text
        return (await self.twilio.wait_for_messages(number, count=before + 1, timeout=10))[
            before
        ].body

    async def counts(self) -> dict[str, int]:
        async with self.sessions() as session:
            return {
                model.__tablename__: int(
                    await session.scalar(select(func.count()).select_from(model)) or 0
                )
                for model in (Contact, ProcessedInbound, Outbox, Report)
            }


@contextlib.asynccontextmanager
async def live_run(
    migrated_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    whatsapp: dict[str, Any] | None = None,
    **settings: Any,
) -> AsyncIterator[Live]:
    """`run` in webhook mode with both fakes until the block ends; ``settings`` replace the
    defaults (e.g. ``media=MediaSettings(...)`` and its secrets), ``whatsapp`` adds to the
    ``[whatsapp]`` settings (the fake's addresses are filled in here)."""
    await load_areas(sessions)
    await link_group(sessions, SUMBER_JAYA, GROUP, "Bhabin Sumber Jaya")
    await link_group(sessions, KAMPUNG_MELAYU, PARENT_GROUP, "Polsek Kampung Melayu")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    twilio = TwilioFake(callback_delay=0.01)
    async with TelegramFake(flood_limits=lenient_private_chats()) as telegram, twilio.serve():
        telegram.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        telegram.add_group(PARENT_GROUP, "Polsek Kampung Melayu", kind="supergroup")
        values: dict[str, Any] = {
            "data_dir": tmp_path,
            "database": DatabaseSettings(url=migrated_url),
            "telegram": TelegramSettings(
                base_url=telegram.bot_api_url,
                base_file_url=telegram.file_api_url,
                mode="webhook",
                webhook_url=url + "/telegram/webhook",
            ),
            "whatsapp": WhatsAppSettings(
                enabled=True,
                from_number=DEFAULT_SENDER,
                public_url=url,
                api_base_url=twilio.base_url,
                content_base_url=twilio.base_url,
                **(whatsapp or {}),
            ),
            "http": HttpSettings(port=port),
            "outbox": OutboxSettings(sweep_seconds=0.2),
            "telegram_token": SecretStr(DEFAULT_TOKEN),
            "telegram_webhook_secret": SecretStr(WEBHOOK_SECRET),
            "twilio_account_sid": SecretStr(twilio.account_sid),
            "twilio_auth_token": SecretStr(twilio.auth_token),
        }
        stop = asyncio.Event()
        task = asyncio.create_task(run(Settings(**{**values, **settings}), stop))
        try:
            await until_healthy(url, task)
            await telegram.wait_for(lambda: telegram.get_bot().webhook is not None, timeout=10)
            running = Running(telegram, sessions, stop, task)
            yield Live(telegram, twilio, sessions, url, running)
        finally:
            stop.set()
            await asyncio.wait_for(task, timeout=15)
            await twilio.drain()


@pytest.fixture
async def live(
    migrated_url: str, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AsyncIterator[Live]:
    async with live_run(migrated_url, sessions, tmp_path) as running:
        yield running


def telegram_update(update_id: int, user_id: int, text: str) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": 1,
            "date": 0,
            "chat": {"id": user_id, "type": "private"},
            "from": {"id": user_id, "is_bot": False, "first_name": "Penyusup"},
            "text": text,
        },
    }
