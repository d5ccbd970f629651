"""The media store's bookkeeping: which files are stored, and whether anything still needs them.

The bytes live in a store (``bot.media``: a folder or an S3-compatible bucket), named by the
SHA-256 of their content (``sha256:<hex>``); each stored file has one ``MediaBlob`` row here.
A file is needed while

- a message that brought it is still being handled (``holds``: taken before the file is
  stored, released by the inbound seam after the core's commit), or
- a report's media (``ReportMedia.store_ref``), a broadcast (``Broadcast.media_ref``) or a
  conversation's draft (its JSON, ``storage.drafts.media_refs``) refers to it; a report draft
  idle past its expiry no longer counts (the core drops it at the next message anyway).

Deciding and deleting happen in one transaction that first locks the blob's row (``locked``):
a concurrent download of the same bytes waits for it, then stores the file anew, so a file that
something refers to is never deleted. Files are shared: two reports with the same photo have
one file and two references.

``media_file_ids`` remembers a channel's own id for a stored file (Telegram's ``file_id``, per
bot and kind), so a photo is uploaded to a bot once and then sent by its id.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, cast, delete, exists, func, not_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.drafts import STORE_PREFIX, media_refs
from storage.models import Broadcast, Conversation, MediaBlob, MediaFileId, ReportMedia

REF_PATTERN = re.compile(r"^sha256:[0-9a-f]{64}$")
BATCH = 500

__all__ = [
    "BATCH",
    "REF_PATTERN",
    "STORE_PREFIX",
    "collectable",
    "draft_refs",
    "file_id",
    "forget",
    "forget_file_id",
    "hold",
    "is_ref",
    "locked",
    "referenced",
    "release",
    "remember_file_id",
    "stat",
    "unreferenced_before",
]


def is_ref(ref: object) -> bool:
    """Whether ``ref`` names a file in the media store (``sha256:`` and 64 hex digits)."""
    return isinstance(ref, str) and REF_PATTERN.match(ref) is not None


def _insert(session: AsyncSession) -> Any:
    return postgresql_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


async def hold(
    session: AsyncSession,
    ref: str,
    *,
    size: int,
    content_type: str | None,
    now: datetime,
    holds: int = 1,
    owner_id: int | None = None,
) -> None:
    """Record a stored (or about to be stored) file, ``holds`` more messages needing it for
    now (0: stored for a send, kept only for the grace period unless referenced); ``owner_id``:
    the person a file about them was made for (``MediaBlob.owner_id``)."""
    stmt = _insert(session)(MediaBlob).values(
        ref=ref,
        size=size,
        content_type=content_type,
        holds=holds,
        created_at=now,
        touched_at=now,
        owner_id=owner_id,
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[MediaBlob.ref],
        set_={
            "holds": MediaBlob.holds + holds,
            "touched_at": now,
            "size": stmt.excluded.size,
            "content_type": func.coalesce(stmt.excluded.content_type, MediaBlob.content_type),
        },
    )
    await session.execute(stmt)


async def locked(session: AsyncSession, ref: str) -> MediaBlob | None:
    """The blob's row, locked for this transaction (PostgreSQL; SQLite's transactions are
    serialised already), read afresh."""
    return await session.scalar(
        select(MediaBlob)
        .where(MediaBlob.ref == ref)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def release(session: AsyncSession, ref: str) -> MediaBlob | None:
    """One hold fewer on the file (the message that brought it was handled); its locked row,
    or None when it is not recorded (any more)."""
    await session.execute(
        update(MediaBlob)
        .where(MediaBlob.ref == ref, MediaBlob.holds > 0)
        .values(holds=MediaBlob.holds - 1)
        .execution_options(synchronize_session=False)
    )
    return await locked(session, ref)


def _live_draft(idle_before: datetime | None, expiring_states: Sequence[str]) -> Any:
    """Conversations whose draft still counts: all, or all but report drafts idle too long."""
    if idle_before is None or not expiring_states:
        return True
    return not_(
        and_(
            Conversation.state.in_(list(expiring_states)),
            Conversation.updated_at < idle_before,
        )
    )


async def referenced(
    session: AsyncSession,
    ref: str,
    *,
    idle_before: datetime | None = None,
    expiring_states: Sequence[str] = (),
) -> bool:
    """Whether a report, a broadcast or a draft refers to the file. Drafts in
    ``expiring_states`` not touched since ``idle_before`` do not count (they are expired)."""
    if not is_ref(ref):
        return True  # not ours to judge: never delete it
    if await session.scalar(select(ReportMedia.id).where(ReportMedia.store_ref == ref).limit(1)):
        return True
    if await session.scalar(select(Broadcast.id).where(Broadcast.media_ref == ref).limit(1)):
        return True
    in_draft = (
        select(Conversation.id)
        .where(
            cast(Conversation.draft, Text).like(f"%{ref}%"),
            _live_draft(idle_before, expiring_states),
        )
        .limit(1)
    )
    return await session.scalar(in_draft) is not None


async def unreferenced_before(
    session: AsyncSession, before: datetime, limit: int = BATCH, *, after: str | None = None
) -> list[str]:
    """Files last stored or held before ``before`` that no report or broadcast refers to, by
    ref, from the one after ``after`` (drafts are the caller's to check: ``draft_refs``)."""
    stmt = (
        select(MediaBlob.ref)
        .where(
            MediaBlob.touched_at < before,
            ~exists().where(ReportMedia.store_ref == MediaBlob.ref),
            ~exists().where(Broadcast.media_ref == MediaBlob.ref),
        )
        .order_by(MediaBlob.ref)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(MediaBlob.ref > after)
    return list((await session.scalars(stmt)).all())


async def draft_refs(
    session: AsyncSession,
    *,
    idle_before: datetime | None = None,
    expiring_states: Sequence[str] = (),
) -> set[str]:
    """Every store ref the drafts that still count hold (only drafts holding any are read)."""
    stmt = select(Conversation.draft).where(
        cast(Conversation.draft, Text).like(f"%{STORE_PREFIX}%"),
        _live_draft(idle_before, expiring_states),
    )
    found: set[str] = set()
    for draft in (await session.scalars(stmt)).all():
        found |= media_refs(draft)
    return found


async def collectable(
    session: AsyncSession,
    ref: str,
    before: datetime,
    *,
    idle_before: datetime | None = None,
    expiring_states: Sequence[str] = (),
) -> bool:
    """Lock the file's row and tell whether it may go now: not stored or held again since
    ``before`` and referred to by nothing."""
    blob = await locked(session, ref)
    return (
        blob is not None
        and blob.touched_at < before
        and not await referenced(
            session, ref, idle_before=idle_before, expiring_states=expiring_states
        )
    )


async def forget(session: AsyncSession, ref: str) -> None:
    """Drop the file's row and the channels' ids for it (the file is deleted by the caller)."""
    await session.execute(delete(MediaFileId).where(MediaFileId.ref == ref))
    await session.execute(delete(MediaBlob).where(MediaBlob.ref == ref))


async def stat(session: AsyncSession, ref: str) -> MediaBlob | None:
    """The file's row (size, content type), or None when it is not stored."""
    return await session.get(MediaBlob, ref)


async def file_id(session: AsyncSession, ref: str, channel: str, bot: str, kind: str) -> str | None:
    """The channel's id for the stored file on this bot, as this kind, if one is known."""
    return await session.scalar(
        select(MediaFileId.file_id).where(
            MediaFileId.ref == ref,
            MediaFileId.channel == channel,
            MediaFileId.bot == bot,
            MediaFileId.kind == kind,
        )
    )


async def remember_file_id(
    session: AsyncSession,
    *,
    ref: str,
    channel: str,
    bot: str,
    kind: str,
    file_id: str,
    now: datetime,
) -> bool:
    """Keep the channel's id for the stored file; False when the file is not recorded."""
    if await session.get(MediaBlob, ref) is None:
        return False
    stmt = _insert(session)(MediaFileId).values(
        ref=ref, channel=channel, bot=bot, kind=kind, file_id=file_id, created_at=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[MediaFileId.ref, MediaFileId.channel, MediaFileId.bot, MediaFileId.kind],
        set_={"file_id": stmt.excluded.file_id, "created_at": now},
    )
    await session.execute(stmt)
    return True


async def forget_file_id(
    session: AsyncSession, ref: str, channel: str, bot: str, kind: str
) -> None:
    """Forget an id the channel no longer accepts."""
    await session.execute(
        delete(MediaFileId).where(
            MediaFileId.ref == ref,
            MediaFileId.channel == channel,
            MediaFileId.bot == bot,
            MediaFileId.kind == kind,
        )
    )
