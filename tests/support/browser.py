"""The sandbox page in headless Chromium (Debian's ``chromium``, driven by Playwright): the
browser, a fresh tab, a chat pane used the way a person would, a small photo to send."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest
from playwright.async_api import Browser, FilePayload, Locator, Page, expect

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
WAIT_MS = 15_000  # the bot answers in milliseconds; this only bounds a failure


def demo_png(width: int = 240, height: int = 150) -> bytes:
    """A small landscape picture (sky over a field), so the photo is visible in the chats."""
    rows = b"".join(
        b"\x00" + (b"\x7e\xb8\xe8" if y < height * 3 // 5 else b"\x4c\x9a\x3c") * width
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        """One PNG chunk with its CRC."""
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


async def open_page(browser: Browser, url: str, width: int, height: int) -> Page:
    """A fresh tab on the sandbox page, failing the test on any script error."""
    context = await browser.new_context(
        viewport={"width": width, "height": height}, locale="id-ID", timezone_id="Asia/Jakarta"
    )
    page = await context.new_page()
    page.on("pageerror", lambda error: pytest.fail(f"script error on the page: {error}"))
    await page.goto(url)
    await expect(page.locator("#status")).to_contain_text("terhubung", timeout=WAIT_MS)
    return page


class ChatPane:
    """One chat on the page: its text box and the bot's messages."""

    def __init__(self, page: Page, key: str) -> None:
        self.root = page.locator(f'[data-pane="{key}"]')
        self.bot_messages = self.root.locator(".messages .msg.bot")

    async def say(self, text: str) -> None:
        """Type into the box and press Enter."""
        box = self.root.locator(".composer .text")
        await box.fill(text)
        await box.press("Enter")

    async def bot_said(self, text: str) -> Locator:
        """Wait until the bot's latest message contains the text."""
        latest = self.bot_messages.last
        await expect(latest).to_contain_text(text, timeout=WAIT_MS)
        return latest


class Pane(ChatPane):
    """A Telegram chat on the page, used the way a person would."""

    async def press(self, label: str) -> None:
        """Press the inline button with that label on the bot's latest message."""
        button = self.bot_messages.last.locator(".keyboard .kb", has_text=label)
        await expect(button).to_be_visible(timeout=WAIT_MS)
        await button.click()


class WhatsAppPane(ChatPane):
    """The WhatsApp resident's pane, used the way a person on WhatsApp would: the same box and
    messages, quick replies and a list instead of inline buttons."""

    def __init__(self, page: Page, key: str = "whatsapp") -> None:
        super().__init__(page, key)

    async def tap(self, title: str) -> None:
        """Tap the quick reply with that title under the bot's latest message."""
        button = self.bot_messages.last.locator(".wa-replies .wa-reply", has_text=title)
        await expect(button).to_be_visible(timeout=WAIT_MS)
        await button.click()

    async def pick(self, title: str) -> None:
        """Open the latest message's list and pick the item with that title."""
        latest = self.bot_messages.last
        opener = latest.locator(".wa-open")
        await expect(opener).to_be_visible(timeout=WAIT_MS)
        await opener.click()
        item = latest.locator(".wa-list .wa-item", has_text=title).first
        await expect(item).to_be_visible()
        await item.click()

    async def share_location(self) -> None:
        """Share the demo pin."""
        await self.root.locator(".composer .locate").click()

    async def send_photo(self, name: str, data: bytes) -> None:
        """Choose a photo with the pane's file input."""
        picture = FilePayload(name=name, mimeType="image/png", buffer=data)
        await self.root.locator(".composer input[type=file]").set_input_files(files=[picture])
