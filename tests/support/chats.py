"""A fake chat for tests and benchmarks: neutral messages into ``process``, no channel SDK.

chat = FakeChat(sessions)
await chat.send("/start 17.71.08.1004")
await chat.press("Setuju")
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.wiring import CHANNELS
from handlers.config import CoreConfig
from handlers.context import Context
from handlers.core import process
from handlers.types import Channel, ChatKind, Inbound, Location, Media, MediaKind, Option, Outcome
from storage.areas import get_by_code, import_areas, parse_areas_csv, sample_csv
from storage.group_links import link_alert_group
from storage.invites import create_invite
from storage.types import Role

SUMBER_JAYA = "17.71.08.1004"
WIYONO = "18.09.01.2006"
KAMPUNG_MELAYU = "17.71.08"
ALERT_GROUP = -1001234567890
_ids = itertools.count(1)


def core_config() -> CoreConfig:
    """The shipped defaults with every channel's capabilities, as ``bot.wiring`` gives them."""
    return dataclasses.replace(CoreConfig.default(), channels=CHANNELS)


async def load_areas(
    sessions: async_sessionmaker[AsyncSession], csv_text: str | None = None
) -> None:
    """Import the sample areas (or the given CSV text) and commit."""
    text = csv_text if csv_text is not None else sample_csv()
    async with sessions() as session:
        await import_areas(session, parse_areas_csv(text))
        await session.commit()


async def make_invite(
    sessions: async_sessionmaker[AsyncSession],
    role: Role | str = Role.OFFICER,
    area_code: str = SUMBER_JAYA,
    *,
    valid_for: timedelta = timedelta(days=7),
    now: datetime | None = None,
) -> str:
    """A fresh invite code for the role in the area (committed)."""
    async with sessions() as session:
        area = await get_by_code(session, area_code)
        assert area is not None, area_code
        invite = await create_invite(
            session,
            role=Role(role),
            area=area,
            valid_for=valid_for,
            now=now or datetime.now(UTC),
        )
        await session.commit()
        return invite.code


async def link_group(
    sessions: async_sessionmaker[AsyncSession],
    area_code: str = SUMBER_JAYA,
    chat_id: int = ALERT_GROUP,
    title: str = "Polsek",
    bot: str | None = None,
) -> None:
    """Make the group chat the area's alert group directly in the database (``bot``: the bot
    that reaches it; None: the area's)."""
    async with sessions() as session:
        area = await get_by_code(session, area_code)
        assert area is not None, area_code
        await link_alert_group(
            session,
            channel="telegram",
            chat_id=chat_id,
            area_id=area.id,
            title=title,
            linked_by_id=None,
            now=datetime.now(UTC),
            bot=bot,
        )
        await session.commit()


def photo(ref: str = "photo-1", caption_kind: MediaKind = MediaKind.PHOTO) -> Media:
    """A photo reference as an adapter would pass it."""
    return Media(caption_kind, ref, "image/jpeg" if caption_kind is MediaKind.PHOTO else None)


@dataclass
class FakeChat:
    """One user in one chat, with a clock the test moves."""

    sessions: async_sessionmaker[AsyncSession]
    config: CoreConfig = field(default_factory=core_config)
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
    chat_title: str | None = None
    bot: str = "default"  # the key of the Telegram bot this chat talks to

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
            chat_title=self.chat_title,
        )

    def context(self) -> Context:
        """This message's context (the chat's clock)."""
        return Context(self.config, now=self.now, bot_username=self.bot_username, bot=self.bot)

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
        if outcome.recorded.state == "duplicate":
            await self.press("dup:new")
        await self.send(description)
        outcome = await self.send("RT 03/RW 02 dekat masjid")
        if outcome.recorded.state == "photo":
            outcome = await self.press("photo:skip")
        if outcome.recorded.state == "anonymous":  # asked in every flow, urgent included
            await self.press("anon:yes" if anonymous else "anon:no")
        return await self.press("sum:send")

    async def onboard(self, area_code: str = SUMBER_JAYA) -> Outcome:
        """/start with the area code and accept the privacy notice."""
        await self.send(f"/start {area_code}")
        return await self.press("consent:yes")

    async def enrol(self, role: Role | str = Role.OFFICER, area_code: str = SUMBER_JAYA) -> Outcome:
        """Become staff with a fresh invite (/daftar KODE), then accept the privacy notice."""
        code = await make_invite(self.sessions, role, area_code)
        outcome = await self.send(f"/daftar {code}")
        assert outcome.recorded.registered == str(Role(role)), texts(outcome)
        return await self.press("consent:yes")

    def in_group(self, chat_id: int = ALERT_GROUP, title: str | None = "Polsek") -> FakeChat:
        """The same person writing in a group chat (same config, clock and name)."""
        return dataclasses.replace(
            self, chat_id=chat_id, chat_kind=ChatKind.GROUP, history=[], chat_title=title
        )


def texts(outcome: Outcome) -> str:
    """All reply texts of an outcome, joined (for assertions)."""
    return "\n".join(r.text for r in outcome.replies)


@dataclass
class Cast:
    """The people of the staff tests: a reporter and a neighbour in Sumber Jaya, its officer,
    an officer of another village (Wiyono) and the coordinator of the kecamatan above."""

    reporter: FakeChat
    resident: FakeChat
    officer: FakeChat
    other_officer: FakeChat
    coordinator: FakeChat

    def get(self, role: str) -> FakeChat:
        """The person by attribute name ('officer', 'coordinator', ...)."""
        person = getattr(self, role)
        assert isinstance(person, FakeChat)
        return person


async def staff_cast(sessions: async_sessionmaker[AsyncSession], *, group: bool = True) -> Cast:
    """Areas loaded, Sumber Jaya's alert group linked (unless ``group`` is False), people ready."""
    await load_areas(sessions)
    if group:
        await link_group(sessions)
    cast = Cast(
        reporter=FakeChat(sessions, user_id=1001, name="Budi Santoso", phone="+6281100001"),
        resident=FakeChat(sessions, user_id=3001, name="Warga Lain"),
        officer=FakeChat(sessions, user_id=4001, name="Bripka Andi"),
        other_officer=FakeChat(sessions, user_id=4002, name="Brigpol Wayan"),
        coordinator=FakeChat(sessions, user_id=4003, name="Iptu Sari"),
    )
    await cast.reporter.onboard()
    await cast.resident.onboard()
    await cast.officer.enrol(Role.OFFICER, SUMBER_JAYA)
    await cast.other_officer.enrol(Role.OFFICER, WIYONO)
    await cast.coordinator.enrol(Role.COORDINATOR, KAMPUNG_MELAYU)
    return cast
