"""An outbox row as the dispatcher hands it to a sender (for tests that drive a sender directly)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery.dispatcher import Envelope
from handlers.types import Reply
from storage import outbox
from storage.models import Outbox


def envelope_of(row: Outbox) -> Envelope:
    """The row as a claim would see it, saved progress included."""
    return Envelope(
        row.id,
        row.channel,
        row.bot,
        row.chat_id,
        row.kind,
        row.payload,
        row.contact_id,
        row.attempts,
    )


async def whatsapp_row(
    sessions: async_sessionmaker[AsyncSession],
    contact_id: int | None,
    chat_id: int,
    kind: str,
    reply: Reply,
    extra: dict[str, Any],
) -> Envelope:
    """A pending WhatsApp outbox row for the chat, as the dispatcher would hand it over."""
    async with sessions() as s:
        row = outbox.enqueue(
            s,
            channel="whatsapp",
            chat_id=chat_id,
            kind=kind,
            reply=reply,
            contact_id=contact_id,
            extra=extra,
        )
        await s.commit()
        return envelope_of(row)


async def reloaded(sessions: async_sessionmaker[AsyncSession], envelope: Envelope) -> Envelope:
    """The row again as a later claim would see it (its saved progress included)."""
    async with sessions() as s:
        row = await s.get(Outbox, envelope.id)
        assert row is not None
        return envelope_of(row)
