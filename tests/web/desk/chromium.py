"""The system Chromium for the desk's browser tests (never `playwright install`), and the real
``ktn-bot run`` they drive, with the fake Bot API."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings, WebSettings
from bot.sandbox.telegram_fake import TelegramFake
from tests.support.net import free_port
from tests.support.telegram_run import (
    GROUP,
    RESIDENT,
    Running,
    bot_running,
    lenient_private_chats,
    link_alert_group,
    settings_for,
)

OFFICER = 4101

CHROMIUM = Path(os.environ.get("KTN_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> Path:
    """Debian's chromium; the test fails (never skips) when it is missing."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} not found: install Debian's chromium (apt-get install chromium) "
            "or set KTN_CHROMIUM"
        )
    return CHROMIUM


@contextlib.asynccontextmanager
async def desk_running(
    migrated_url: str,
    sessions: async_sessionmaker[AsyncSession],
    tmp_path: Path,
    changes: Callable[[Settings], dict[str, Any]] = lambda _settings: {},
) -> AsyncIterator[tuple[Running, str]]:
    """The real `run` with its desk on a free port (tiles off), Sumber Jaya's officers' group,
    the resident Siti and the officer Bripka Andi in the fake; ``changes``: settings to change
    (from the settings made). Yields the running bot and the desk's base URL."""
    await link_alert_group(sessions)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    async with TelegramFake(flood_limits=lenient_private_chats()) as fake:
        fake.add_group(GROUP, "Bhabin Sumber Jaya", kind="supergroup")
        fake.add_user(RESIDENT, "Siti", "Aminah")
        fake.add_user(OFFICER, "Bripka", "Andi")
        settings = settings_for(fake, migrated_url, tmp_path, port=port)
        web = WebSettings(public_url=base, tiles_url="")
        settings = settings.model_copy(update={"web": web, **changes(settings)})
        async with bot_running(fake, settings, sessions) as bot:
            yield bot, base
