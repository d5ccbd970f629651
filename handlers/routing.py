"""Which Telegram bot reaches a chat: the one the person (or the group) talks to.

A bot can write to a person only after they pressed Start on *that* bot, so a contact is reached
through the bot of their latest private message (``Contact.bot``), and a group through the bot
that was told ``/hubungkan`` there (``GroupChat.bot``). Only when neither is known (a contact or
group made without a message, e.g. seeded) does the area decide: the bot that claims the area
or its nearest parent in ``[[telegram.bots]]``, else the default bot. Channels that cannot run
several bots (``Capabilities.several_bots``; WhatsApp has one sender number) always use the
default key, so their rate limit stays one.

Outbox rows carry the result in their ``bot`` column; the dispatcher sends each row through
that bot within that bot's own limits, so a broadcast over areas of several bots goes out over
all of them at once.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from handlers.config import CoreConfig
from storage.areas import code_and_parent
from storage.models import Contact, GroupChat
from storage.types import DEFAULT_BOT

__all__ = ["DEFAULT_BOT", "MAX_DEPTH", "BotRoutes"]

MAX_DEPTH = 10  # provinsi .. RT is eight levels


class BotRoutes:
    """Bot keys for the destinations of one transaction (area look-ups remembered)."""

    def __init__(self, session: AsyncSession, config: CoreConfig) -> None:
        self.session = session
        self.config = config
        self._by_area: dict[int | None, str] = {}

    async def contact(self, contact: Contact) -> str:
        """The bot that can write to this person's private chat."""
        return await self._pick(contact.channel, contact.bot, contact.area_id)

    async def group(self, group: GroupChat) -> str:
        """The bot that reaches this group chat."""
        return await self._pick(group.channel, group.bot, group.area_id)

    async def area(self, area_id: int | None) -> str:
        """The bot that serves the area: its own claim, else its nearest parent's, else the
        default bot."""
        if not self.config.bot_areas or area_id is None:
            return DEFAULT_BOT
        if area_id not in self._by_area:
            self._by_area[area_id] = await self._claimant(area_id)
        return self._by_area[area_id]

    async def _pick(self, channel: str, recorded: str | None, area_id: int | None) -> str:
        if not self.config.capabilities(channel).several_bots:
            return DEFAULT_BOT
        return recorded or await self.area(area_id)

    async def _claimant(self, area_id: int) -> str:
        current: int | None = area_id
        for _ in range(MAX_DEPTH):
            if current is None:
                break
            found = await code_and_parent(self.session, current)
            if found is None:
                break
            code, current = found
            if code in self.config.bot_areas:
                return self.config.bot_areas[code]
        return DEFAULT_BOT
