"""Which group chat receives an area's alerts: linking, moving and looking the links up.

One group serves one area (a group's link moves when it is linked again elsewhere), and an area
has one alert group per channel (linking a new group replaces the old link).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Area, GroupChat

ALERTS = "alerts"


@dataclass(frozen=True, slots=True)
class LinkResult:
    """What linking changed: the area the group served before, and groups that lost the area."""

    group: GroupChat
    previous_area_id: int | None = None
    replaced_chat_ids: list[int] = field(default_factory=list)


async def alert_groups(
    session: AsyncSession, area_id: int, channel: str | None = None
) -> list[GroupChat]:
    """The group chats that receive the area's alerts (optionally of one channel)."""
    stmt = select(GroupChat).where(GroupChat.area_id == area_id, GroupChat.purpose == ALERTS)
    if channel is not None:
        stmt = stmt.where(GroupChat.channel == str(channel))
    return list((await session.scalars(stmt.order_by(GroupChat.id))).all())


async def find_group(session: AsyncSession, channel: str, chat_id: int) -> GroupChat | None:
    """The stored link of this group chat, or None."""
    return await session.scalar(
        select(GroupChat).where(GroupChat.channel == str(channel), GroupChat.chat_id == chat_id)
    )


async def area_of_group(session: AsyncSession, channel: str, chat_id: int) -> Area | None:
    """The area this group chat is linked to, or None."""
    found: Area | None = await session.scalar(
        select(Area)
        .join(GroupChat, GroupChat.area_id == Area.id)
        .where(GroupChat.channel == channel, GroupChat.chat_id == chat_id)
    )
    return found


async def link_alert_group(
    session: AsyncSession,
    *,
    channel: str,
    chat_id: int,
    area_id: int,
    title: str | None,
    linked_by_id: int | None,
    now: datetime,
    bot: str | None = None,
) -> LinkResult:
    """Make the group the area's alert group on its channel, reached through ``bot`` (the bot
    that was asked; None: the area's); the caller commits."""
    others = [g for g in await alert_groups(session, area_id, channel) if g.chat_id != chat_id]
    for other in others:
        await session.delete(other)
    group = await find_group(session, channel, chat_id)
    previous: int | None = None
    if group is None:
        group = GroupChat(channel=str(channel), chat_id=chat_id)
        session.add(group)
    elif group.area_id != area_id:
        previous = group.area_id
    group.area_id = area_id
    group.purpose = ALERTS
    group.title = (title or "")[:255] or group.title
    group.linked_by_id = linked_by_id
    group.linked_at = now
    group.bot = bot
    await session.flush()
    return LinkResult(group, previous, [o.chat_id for o in others])
