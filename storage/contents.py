"""WhatsApp's Content API resources for buttons, by the hash of their body (``whatsapp_contents``).

A content is created once and then sent by every worker, after every restart: the row holds its
SID. A body Twilio refused holds the reason instead, and when it may be tried again (never, for
a content Twilio will always refuse). Two workers creating the same content at once both insert:
the first SID stored stays, and a refusal never replaces a SID.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import WhatsAppContent

_TABLE = cast(Table, WhatsAppContent.__table__)


async def find(session: AsyncSession, body_hash: str) -> WhatsAppContent | None:
    """The stored content (or refusal) for this body, if any."""
    return await session.get(WhatsAppContent, body_hash, populate_existing=True)


async def _upsert(session: AsyncSession, values: dict[str, Any]) -> None:
    """Insert the row, or update one that has no SID yet (a SID, once stored, stays)."""
    changed = {k: v for k, v in values.items() if k not in ("body_hash", "created_at")}
    only_without_sid = _TABLE.c.content_sid.is_(None)
    if session.get_bind().dialect.name == "postgresql":
        pg = postgresql_insert(_TABLE).values(**values)
        await session.execute(
            pg.on_conflict_do_update(
                index_elements=[_TABLE.c.body_hash], set_=changed, where=only_without_sid
            )
        )
        return
    lite = sqlite_insert(_TABLE).values(**values)
    await session.execute(
        lite.on_conflict_do_update(
            index_elements=[_TABLE.c.body_hash], set_=changed, where=only_without_sid
        )
    )


async def save_sid(
    session: AsyncSession, body_hash: str, content_type: str, sid: str, now: datetime
) -> str:
    """Remember the created content; returns the SID stored for the body, which is another
    worker's when it stored one first (both are valid: every worker then sends the same)."""
    await _upsert(
        session,
        {
            "body_hash": body_hash,
            "content_type": content_type,
            "content_sid": sid,
            "refused": None,
            "retry_at": None,
            "created_at": now,
            "updated_at": now,
        },
    )
    stored = await session.scalar(
        select(WhatsAppContent.content_sid).where(WhatsAppContent.body_hash == body_hash)
    )
    return stored or sid


async def save_refusal(
    session: AsyncSession,
    body_hash: str,
    content_type: str,
    reason: str,
    retry_at: datetime | None,
    now: datetime,
) -> None:
    """Remember that Twilio refused this body (``retry_at`` None: for good); a stored SID wins."""
    await _upsert(
        session,
        {
            "body_hash": body_hash,
            "content_type": content_type,
            "content_sid": None,
            "refused": reason[:255],
            "retry_at": retry_at,
            "created_at": now,
            "updated_at": now,
        },
    )


async def forget(session: AsyncSession, body_hash: str, sid: str) -> None:
    """Drop a content Twilio no longer knows (deleted there): the next message creates it anew."""
    await session.execute(
        delete(WhatsAppContent).where(
            WhatsAppContent.body_hash == body_hash, WhatsAppContent.content_sid == sid
        )
    )
