"""Broadcasts: who receives an announcement, and how far its delivery has come.

An announcement goes to an area and every area below it: its residents (consented, not opted
out, not erased or blocked), its officers' groups, or both. Each recipient becomes one outbox row
keyed ``broadcast:<id>:<recipient>`` so writing them again can never duplicate a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Broadcast, Contact, GroupChat, Outbox
from storage.types import OutboxStatus, Role

SENT = frozenset({OutboxStatus.SENT, OutboxStatus.DELIVERED, OutboxStatus.READ})
FAILED = frozenset({OutboxStatus.FAILED, OutboxStatus.UNDELIVERED, OutboxStatus.NEEDS_TEMPLATE})


class Audience(StrEnum):
    RESIDENTS = "residents"
    GROUPS = "groups"
    BOTH = "both"

    @property
    def residents(self) -> bool:
        return self in (Audience.RESIDENTS, Audience.BOTH)

    @property
    def groups(self) -> bool:
        return self in (Audience.GROUPS, Audience.BOTH)


async def residents_in(session: AsyncSession, area_ids: Sequence[int]) -> list[Contact]:
    """Residents of these areas who accepted the privacy notice and may be written to."""
    stmt = (
        select(Contact)
        .where(
            Contact.area_id.in_(list(area_ids)),
            Contact.role == Role.RESIDENT.value,
            Contact.consent_at.is_not(None),
            Contact.opted_out_at.is_(None),
            Contact.erased_at.is_(None),
            Contact.blocked_at.is_(None),
        )
        .order_by(Contact.id)
    )
    return list((await session.scalars(stmt)).all())


async def groups_in(session: AsyncSession, area_ids: Sequence[int]) -> list[GroupChat]:
    """The group chats linked to these areas (a chat is linked once: unique channel+chat_id)."""
    stmt = select(GroupChat).where(GroupChat.area_id.in_(list(area_ids))).order_by(GroupChat.id)
    return list((await session.scalars(stmt)).all())


@dataclass(frozen=True, slots=True)
class Progress:
    """Delivery of one broadcast: messages sent, given up on, and still to go."""

    broadcast: Broadcast
    sent: int
    failed: int
    pending: int


async def recent(session: AsyncSession, area_ids: Sequence[int], limit: int = 5) -> list[Progress]:
    """The latest broadcasts to these areas with their delivery counts, newest first."""
    found = (
        await session.scalars(
            select(Broadcast)
            .where(Broadcast.area_id.in_(list(area_ids)))
            .order_by(Broadcast.id.desc())
            .limit(limit)
        )
    ).all()
    if not found:
        return []
    rows = await session.execute(
        select(Outbox.broadcast_id, Outbox.status, func.count())
        .where(Outbox.broadcast_id.in_([b.id for b in found]))
        .group_by(Outbox.broadcast_id, Outbox.status)
    )
    counts: dict[int, dict[str, int]] = {}
    for broadcast_id, status, count in rows.all():
        if broadcast_id is not None:
            counts.setdefault(int(broadcast_id), {})[str(status)] = int(count)
    result = []
    for item in found:
        by_status = counts.get(item.id, {})
        sent = sum(n for s, n in by_status.items() if s in SENT)
        failed = sum(n for s, n in by_status.items() if s in FAILED)
        result.append(Progress(item, sent, failed, sum(by_status.values()) - sent - failed))
    return result
