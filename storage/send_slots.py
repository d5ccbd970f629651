"""Deployment-wide flood limits in PostgreSQL: the ``send_slots`` statements.

A slot is one send counted against a scope (a bot, or a bot's group chat) until ``until``, by
the database's clock so every worker agrees. ``take`` serialises each scope with an advisory
lock for the caller's transaction. ``bot.delivery.shared_limits`` decides what to wait for.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.locks import lock_for_transaction, scope_key
from storage.models import SendSlot


async def take(
    conn: AsyncConnection, scope: str, limit: int, in_flight: timedelta
) -> tuple[int | None, timedelta]:
    """Take a slot of ``scope`` (at most ``limit`` taken at once), held for ``in_flight`` until
    ``release``: its id, or None and how long until the first taken slot frees. Slots that
    freed are deleted. Run in a transaction of its own: the scope is locked until its end."""
    await lock_for_transaction(conn, scope_key(scope))
    now = (await conn.execute(select(func.clock_timestamp()))).scalar_one()
    untils = (
        (
            await conn.execute(
                select(SendSlot.until)
                .where(SendSlot.scope == scope, SendSlot.until > now)
                .order_by(SendSlot.until)
            )
        )
        .scalars()
        .all()
    )
    if len(untils) >= limit:
        return None, untils[len(untils) - limit] - now
    await conn.execute(delete(SendSlot).where(SendSlot.scope == scope, SendSlot.until <= now))
    slot_id = (
        await conn.execute(
            insert(SendSlot).values(scope=scope, until=now + in_flight).returning(SendSlot.id)
        )
    ).scalar_one()
    return slot_id, timedelta(0)


async def release(conn: AsyncConnection, slots: Sequence[tuple[int, float]]) -> None:
    """Each slot (id, period in seconds) frees one period from now, by the database's clock."""
    for slot_id, period in slots:
        await conn.execute(
            update(SendSlot)
            .where(SendSlot.id == slot_id)
            .values(until=func.clock_timestamp() + timedelta(seconds=period))
        )
