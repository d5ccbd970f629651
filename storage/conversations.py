"""Conversations: where a user stands with the bot in one chat, and their draft.

``Conversation.version`` is SQLAlchemy's version counter: an update from a transaction that read
an older version raises StaleDataError. On PostgreSQL the rows are also locked (FOR UPDATE) when
loaded, so messages from one user are handled one after the other.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.drafts import Draft
from storage.models import Contact, Conversation

# Built once: building a statement costs more than SQLite takes to run it (bench P1).
_BOTH = (
    select(Contact, Conversation)
    .join(
        Conversation,
        and_(Conversation.channel == Contact.channel, Conversation.user_id == Contact.external_id),
    )
    .where(
        Contact.channel == bindparam("channel"),
        Contact.external_id == bindparam("user_id"),
        Conversation.chat_id == bindparam("chat_id"),
    )
    .with_for_update()
)
_CONTACT = (
    select(Contact)
    .where(Contact.channel == bindparam("channel"), Contact.external_id == bindparam("user_id"))
    .with_for_update()
)


async def load_for_update(
    session: AsyncSession, channel: str, chat_id: int, user_id: int
) -> tuple[Contact | None, Conversation | None]:
    """The user's contact and conversation in this chat, locked; one query when both exist."""
    params = {"channel": str(channel), "user_id": user_id, "chat_id": chat_id}
    row = (await session.execute(_BOTH, params)).first()
    if row is not None:
        return row[0], row[1]
    contact = await session.scalar(_CONTACT, params)
    return contact, None


async def get(
    session: AsyncSession, channel: str, chat_id: int, user_id: int
) -> Conversation | None:
    """The conversation of this user in this chat, or None."""
    return await session.scalar(
        select(Conversation).where(
            Conversation.channel == str(channel),
            Conversation.chat_id == chat_id,
            Conversation.user_id == user_id,
        )
    )


async def create(
    session: AsyncSession, channel: str, chat_id: int, user_id: int, now: datetime
) -> Conversation:
    """Insert an idle conversation; a concurrent insert raises IntegrityError (caller retries)."""
    conversation = Conversation(
        channel=str(channel),
        chat_id=chat_id,
        user_id=user_id,
        state="idle",
        draft={},
        updated_at=now,
    )
    session.add(conversation)
    await session.flush()
    return conversation


def save(conversation: Conversation, state: str, draft: Draft, now: datetime) -> None:
    """Store the new state and draft (a new dict, so the JSON change is seen) and bump the version.

    ``updated_at`` is set on every message, so two messages handled at once always conflict on
    the version column instead of silently losing one update.
    """
    if conversation.state != state:
        conversation.state = state
    if draft != conversation.draft:
        conversation.draft = draft.copy()
    conversation.updated_at = now
