"""Group chats linked to areas."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import GroupChat, Outbox
from storage.types import OutboxStatus


async def migrate_chat(session: AsyncSession, channel: str, old: int, new: int) -> None:
    """A group became a supergroup: its id changes in the link and in every unsent row."""
    await session.execute(
        update(GroupChat)
        .where(GroupChat.channel == channel, GroupChat.chat_id == old)
        .values(chat_id=new)
    )
    await session.execute(
        update(Outbox)
        .where(
            Outbox.channel == channel,
            Outbox.chat_id == old,
            Outbox.status.in_((OutboxStatus.PENDING, OutboxStatus.SENDING)),
        )
        .values(chat_id=new)
    )
