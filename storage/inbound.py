"""Inbound ids already handled (Telegram update_id, Twilio MessageSid): a retry is dropped.

One statement per message: INSERT ... ON CONFLICT DO NOTHING, built once (both databases
have it); no row inserted means the message was handled before.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import CursorResult, Table
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ProcessedInbound

_TABLE = cast(Table, ProcessedInbound.__table__)
_CLAIM = {
    "sqlite": sqlite_insert(_TABLE).on_conflict_do_nothing(),
    "postgresql": postgresql_insert(_TABLE).on_conflict_do_nothing(),
}


async def claim(session: AsyncSession, channel: str, external_id: str, now: datetime) -> bool:
    """Record that this message is being handled; False when it was handled before."""
    statement = _CLAIM[session.get_bind().dialect.name]
    result = await session.execute(
        statement, {"channel": channel, "external_id": external_id, "processed_at": now}
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


async def handled(session: AsyncSession, channel: str, external_id: str) -> bool:
    """Whether this message was claimed already (a look, without claiming it)."""
    return await session.get(ProcessedInbound, (channel, external_id)) is not None
