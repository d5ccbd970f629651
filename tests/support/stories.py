"""One person's chat with the bot, the same on every channel, for the parametrized story suite
(tests/e2e/test_stories.py): say, tap, send a photo or a pin, wait for news.

``TelegramChat`` drives the Telegram fake (a private chat, or the officers' group), and
``WhatsAppChat`` the Twilio fake (signed webhooks to the real WhatsApp channel). A story written
against ``Chat`` runs unchanged on both: a feature one channel lacks fails there.
"""

from __future__ import annotations

import abc
import asyncio
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

import bot.app
from bot.roles.scheduler import ReminderScheduler
from bot.sandbox.telegram_fake import SentMessage, TelegramFake
from bot.sandbox.twilio_fake import FakeMessage, TwilioFake

WAIT = 15.0  # seconds; the bot answers in milliseconds, this only bounds a failure


@dataclass(frozen=True)
class Said:
    """A message the bot sent, as the person sees it."""

    text: str
    buttons: list[str]
    photo: bool


class Chat(abc.ABC):
    """A person in one chat with the bot."""

    name: str

    @abc.abstractmethod
    def mark(self) -> int:
        """A point in the chat: what the bot sends after it is news."""

    @abc.abstractmethod
    async def seen(self, after: int) -> list[Said]:
        """The bot's messages in this chat after ``mark()``'s point."""

    @abc.abstractmethod
    async def _wait_change(self) -> None:
        """Until the chat may have changed (or a short while)."""

    @abc.abstractmethod
    async def send(self, text: str) -> None:
        """Type a message."""

    @abc.abstractmethod
    async def send_photo(self, data: bytes) -> None:
        """Send a photo."""

    @abc.abstractmethod
    async def send_location(self, lat: float, lon: float) -> None:
        """Share a pin."""

    @abc.abstractmethod
    async def press(self, label: str) -> None:
        """Tap the button (or list item) with this label on the newest message showing it."""

    @abc.abstractmethod
    async def documents(self, after: int) -> list[bytes]:
        """The files the bot sent as documents after ``mark()``'s point, as the person opens
        them (Telegram: the upload; WhatsApp: fetched from the link Twilio was given)."""

    @staticmethod
    def names(label: str, shown: str) -> bool:
        """Whether a button showing ``shown`` is the one called ``label`` (a place's button may
        add its district: "Sumber Jaya (Kampung Melayu, Kota Bengkulu)")."""
        return shown == label or shown.startswith(label + " (")

    async def wait(self, after: int, contains: str = "", photo: bool = False) -> Said:
        """The first message after ``after`` that contains the text (and is a photo)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT
        while True:
            for said in await self.seen(after):
                if contains in said.text and (said.photo or not photo):
                    return said
            if loop.time() > deadline:
                got = [s.text[:70] for s in await self.seen(after)]
                raise AssertionError(f"{self.name}: nothing containing {contains!r}; got {got}")
            await self._wait_change()

    async def say(self, text: str, expect: str = "") -> Said:
        """Type a message; the bot's next message (containing ``expect``)."""
        mark = self.mark()
        await self.send(text)
        return await self.wait(mark, expect)

    async def tap(self, label: str, expect: str = "") -> Said:
        """Tap a button; the bot's next message (containing ``expect``)."""
        mark = self.mark()
        await self.press(label)
        return await self.wait(mark, expect)

    async def photo(self, data: bytes, expect: str = "") -> Said:
        """Send a photo; the bot's next message."""
        mark = self.mark()
        await self.send_photo(data)
        return await self.wait(mark, expect)

    async def location(self, lat: float, lon: float, expect: str = "") -> Said:
        """Share a pin; the bot's next message."""
        mark = self.mark()
        await self.send_location(lat, lon)
        return await self.wait(mark, expect)

    async def news(self, contains: str, after: int = 0, photo: bool = False) -> Said:
        """A message containing the text, sent at any time after ``after``."""
        return await self.wait(after, contains, photo)

    async def everything(self) -> str:
        """All the bot ever showed in this chat (every version of an edited message)."""
        return "\n".join(s.text for s in await self.seen(0))


class TelegramChat(Chat):
    """A Telegram user in a chat (their private chat, or a group they are in)."""

    def __init__(self, fake: TelegramFake, chat_id: int, user_id: int, name: str) -> None:
        self.fake, self.chat_id, self.user_id, self.name = fake, chat_id, user_id, name

    def _sent(self) -> list[SentMessage]:
        return list(self.fake.messages(self.chat_id))

    def mark(self) -> int:
        return self.fake.mark()

    async def seen(self, after: int) -> list[Said]:
        # Every bot message and edit after the event ``after``, as it looks now.
        ids: list[int] = []
        for event in self.fake.events[after:]:
            if event.chat_id == self.chat_id and event.type in ("message", "edit"):
                message_id = int(event.data["message_id"])
                if message_id not in ids:
                    ids.append(message_id)
        by_id = {m.message_id: m for m in self._sent()}
        return [self._said(by_id[i]) for i in ids if i in by_id]

    async def everything(self) -> str:
        versions = []
        for message in self._sent():
            versions.append(message.content)
            versions.extend(f"{e.text or ''} {e.caption or ''}" for e in message.edits)
        return "\n".join(versions)

    @staticmethod
    def _said(message: SentMessage) -> Said:
        labels = [str(b.get("text")) for b in message.buttons()]
        return Said(message.content, labels, message.kind == "photo")

    async def _wait_change(self) -> None:
        await self.fake.wait_change(0.5)

    async def send(self, text: str) -> None:
        self.fake.send_text(self.chat_id, self.user_id, text)

    async def documents(self, after: int) -> list[bytes]:
        ids = {
            int(e.data["message_id"])
            for e in self.fake.events[after:]
            if e.chat_id == self.chat_id and e.type == "message"
        }
        return [
            self.fake.files[m.file_id].data
            for m in self._sent()
            if m.message_id in ids and m.kind == "document" and m.file_id is not None
        ]

    async def send_photo(self, data: bytes) -> None:
        self.fake.send_photo(self.chat_id, self.user_id, data)

    async def send_location(self, lat: float, lon: float) -> None:
        self.fake.send_location(self.chat_id, self.user_id, lat, lon)

    async def press(self, label: str) -> None:
        for message in reversed(self._sent()):
            for button in message.buttons():
                if self.names(label, str(button.get("text"))):
                    self.fake.press_button(
                        self.chat_id, self.user_id, message.message_id, button["callback_data"]
                    )
                    return
        raise AssertionError(f"{self.name}: no button {label!r}")


class WhatsAppChat(Chat):
    """A WhatsApp user: their 1:1 chat with the bot through Twilio."""

    def __init__(self, fake: TwilioFake, hook: str, number: str, name: str) -> None:
        self.fake, self.hook, self.number, self.name = fake, hook, number, name

    def _sent(self) -> list[FakeMessage]:
        return self.fake.messages_to(self.number)

    def mark(self) -> int:
        return len(self._sent())

    async def seen(self, after: int) -> list[Said]:
        return [
            Said(m.shown, [b.title for b in m.buttons], bool(m.media_urls))
            for m in self._sent()[after:]
        ]

    async def _wait_change(self) -> None:
        await self.fake.wait_change(0.5)

    async def _post(self, form: dict[str, str]) -> None:
        response = await self.fake.post_inbound(self.hook, form)
        assert response.status_code == 200, response.text

    async def send(self, text: str) -> None:
        await self._post(self.fake.inbound_text(self.number, text, self.name))

    async def documents(self, after: int) -> list[bytes]:
        found = []
        async with httpx.AsyncClient(trust_env=False) as client:
            for message in self._sent()[after:]:
                for url in message.media_urls:
                    response = await client.get(url)
                    if not response.headers.get("content-type", "").startswith("image/"):
                        found.append(response.content)
        return found

    async def send_photo(self, data: bytes) -> None:
        form = self.fake.inbound_media(self.number, data, "image/jpeg", profile_name=self.name)
        await self._post(form)

    async def send_location(self, lat: float, lon: float) -> None:
        await self._post(self.fake.inbound_location(self.number, lat, lon, profile_name=self.name))

    async def press(self, label: str) -> None:
        for message in reversed(self._sent()):
            for button in message.buttons:
                if self.names(label, button.title):
                    form = self.fake.tap(message, button.title, profile_name=self.name)
                    await self._post(form)
                    return
        raise AssertionError(f"{self.name}: no button {label!r}")


@dataclass
class Schedules:
    """The scheduler each `run` makes (to make a due sweep happen now, as its job would)."""

    made: list[ReminderScheduler] = field(default_factory=list)

    def watch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real = bot.app.make_scheduler

        def make_scheduler(*args: Any, **kwargs: Any) -> ReminderScheduler | None:
            scheduler = real(*args, **kwargs)
            if scheduler is not None:
                self.made.append(scheduler)
            return scheduler

        monkeypatch.setattr(bot.app, "make_scheduler", make_scheduler)

    async def running(self) -> ReminderScheduler:
        """The current process's scheduler, once this process leads and started it."""
        for _ in range(200):
            if self.made and self.made[-1].running:
                return self.made[-1]
            await asyncio.sleep(0.05)
        raise AssertionError("the scheduler did not start")
