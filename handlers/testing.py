"""A fake chat for tests and benchmarks: neutral messages into ``process``, no channel SDK.

chat = FakeChat(sessions)
await chat.send("/start 17.71.08.1004")
await chat.press("Setuju")
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.config import CoreConfig
from handlers.context import Context
from handlers.core import process
from handlers.types import Channel, ChatKind, Inbound, Location, Media, MediaKind, Option, Outcome
from storage.areas import import_areas, parse_areas_csv

SAMPLE_AREAS = Path(__file__).resolve().parent.parent / "data" / "areas-sample.csv"
SUMBER_JAYA = "17.71.08.1004"
WIYONO = "18.09.01.2006"
_ids = itertools.count(1)


async def load_areas(
    sessions: async_sessionmaker[AsyncSession], csv_text: str | None = None
) -> None:
    """Import the sample areas (or the given CSV text) and commit."""
    text = csv_text if csv_text is not None else SAMPLE_AREAS.read_text(encoding="utf-8")
    async with sessions() as session:
        await import_areas(session, parse_areas_csv(text))
        await session.commit()


def photo(ref: str = "photo-1", caption_kind: MediaKind = MediaKind.PHOTO) -> Media:
    """A photo reference as an adapter would pass it."""
    return Media(caption_kind, ref, "image/jpeg" if caption_kind is MediaKind.PHOTO else None)


@dataclass
class FakeChat:
    """One user in one chat, with a clock the test moves."""

    sessions: async_sessionmaker[AsyncSession]
    config: CoreConfig = field(default_factory=CoreConfig.default)
    channel: Channel = Channel.TELEGRAM
    user_id: int = 1001
    chat_id: int | None = None
    chat_kind: ChatKind = ChatKind.PRIVATE
    name: str = "Budi Santoso"
    phone: str | None = None
    language_code: str | None = None
    bot_username: str | None = "ktn_bot"
    now: datetime = field(default_factory=lambda: datetime(2025, 5, 12, 3, 0, tzinfo=UTC))
    history: list[Outcome] = field(default_factory=list)

    def message(
        self,
        text: str | None = None,
        *,
        button: str | None = None,
        location: Location | None = None,
        media: Sequence[Media] = (),
        message_id: str | None = None,
    ) -> Inbound:
        """A neutral inbound message from this user."""
        return Inbound(
            channel=self.channel,
            chat_id=self.chat_id if self.chat_id is not None else self.user_id,
            chat_kind=self.chat_kind,
            user_id=self.user_id,
            display_name=self.name,
            text=text,
            button=button,
            location=location,
            media=tuple(media),
            message_id=message_id if message_id is not None else f"m{next(_ids)}",
            phone=self.phone,
            language_code=self.language_code,
        )

    def context(self) -> Context:
        """This message's context (the chat's clock)."""
        return Context(self.config, now=self.now, bot_username=self.bot_username)

    async def deliver(self, msg: Inbound) -> Outcome:
        """Process a prepared message."""
        outcome = await process(self.sessions, msg, self.context())
        self.history.append(outcome)
        return outcome

    async def send(
        self,
        text: str | None = None,
        *,
        button: str | None = None,
        location: Location | None = None,
        media: Sequence[Media] = (),
        message_id: str | None = None,
    ) -> Outcome:
        """Send a message and return the core's outcome."""
        msg = self.message(
            text, button=button, location=location, media=media, message_id=message_id
        )
        return await self.deliver(msg)

    @property
    def options(self) -> list[Option]:
        """The options of the last answer that offered some."""
        for outcome in reversed(self.history):
            for reply in reversed(outcome.replies):
                if reply.options:
                    return list(reply.options)
            if outcome.replies:
                return []
        return []

    async def press(self, label: str) -> Outcome:
        """Press the offered button with this label (case-insensitive) or data."""
        for option in self.options:
            if label.lower() in (option.label.lower(), option.data.lower()):
                return await self.send(button=option.data)
        raise AssertionError(f"no option {label!r}; offered: {[o.label for o in self.options]}")

    def advance(self, **delta: float) -> None:
        """Move the clock: ``chat.advance(minutes=61)``."""
        self.now += timedelta(**delta)

    async def file_report(
        self,
        category: str = "keamanan",
        description: str = "Ada orang mencurigakan mondar-mandir",
        *,
        anonymous: bool = False,
    ) -> Outcome:
        """Go through the whole flow (already onboarded) and send; returns the last outcome."""
        await self.send("/lapor")
        outcome = await self.press(f"cat:{category}")
        if outcome.recorded.get("state") == "duplicate":
            await self.press("dup:new")
        await self.send(description)
        outcome = await self.send("RT 03/RW 02 dekat masjid")
        if outcome.recorded.get("state") == "photo":
            await self.press("photo:skip")
            await self.press("anon:yes" if anonymous else "anon:no")
        return await self.press("sum:send")

    async def onboard(self, area_code: str = SUMBER_JAYA) -> Outcome:
        """/start with the area code and accept the privacy notice."""
        await self.send(f"/start {area_code}")
        return await self.press("consent:yes")


def texts(outcome: Outcome) -> str:
    """All reply texts of an outcome, joined (for assertions)."""
    return "\n".join(r.text for r in outcome.replies)
