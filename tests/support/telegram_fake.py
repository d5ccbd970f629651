"""Fixtures for tests against the fake Bot API alone: a served fake, a PNG, PTB's settings."""

from __future__ import annotations

import struct
import zlib
from collections.abc import AsyncIterator

import pytest

from bot.sandbox.telegram_fake import TelegramFake

USER = 4242
GROUP = -4001


def png(width: int, height: int) -> bytes:
    """A tiny valid PNG of that size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x80" * width for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


@pytest.fixture(autouse=True)
def ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """PTB 22 warns when *constructing* RetryAfter unless PTB_TIMEDELTA opts into timedelta."""
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


@pytest.fixture
async def fake() -> AsyncIterator[TelegramFake]:
    """A served fake with a user who started the bot and a group the bot is in."""
    async with TelegramFake() as served:
        served.add_user(USER, "Siti", username="siti")
        served.start(USER)
        served.add_group(GROUP, "Pos Ronda RW 03", members=[USER])
        yield served
