"""Deployment-wide flood limits: every worker's sends count in one PostgreSQL table.

Each process keeps its own sliding windows (the dispatcher's), but with several workers those
only hold per process. Here a send takes a slot in ``send_slots`` for its bot and, for a group,
for that group, in one short transaction serialised per scope by an advisory lock; it waits
when a scope is full. A slot stays taken while the send is in flight and for one period after
its answer arrived (the dispatcher's completion-time rule), by the database's clock, so all
workers agree. Direct replies and outbox sends both pass here: they share the bot's 30/s
(``bot.channels.telegram.limited`` puts Telegram's calls through it). The statements are
``storage.send_slots``'s.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.delivery.windows import ChannelLimits
from storage import send_slots

log = logging.getLogger(__name__)
IN_FLIGHT = timedelta(seconds=30)  # a worker that dies mid-send frees its slot after this
POLL = 0.2  # longest wait between looks (every slot of the scope in flight)
MARGIN = 0.02  # seconds added to each period against clock and network jitter


@dataclass(frozen=True, slots=True)
class Scope:
    """One limit: at most ``limit`` sends in any ``period`` seconds under ``name``."""

    name: str
    limit: int
    period: float


@dataclass
class SharedLimiter:
    """Slots in PostgreSQL shared by every worker of the deployment."""

    engine: AsyncEngine
    limits: ChannelLimits

    def scopes(self, bot: str, chat_id: int) -> list[Scope]:
        """The limits a send to ``chat_id`` by ``bot`` counts against."""
        count, period = self.limits.overall_window
        scopes = [Scope(f"tg:{bot}", count, period + MARGIN)]
        if chat_id < 0 and self.limits.group_window is not None:
            count, period = self.limits.group_window
            scopes.append(Scope(f"tg:{bot}:{chat_id}", count, period + MARGIN))
        return scopes

    def __post_init__(self) -> None:
        self._queues: dict[str, asyncio.Lock] = {}

    async def acquire(self, scopes: list[Scope]) -> list[tuple[int, Scope]]:
        """Wait for a free slot in every scope and take them; returns the slots."""
        taken: list[tuple[int, Scope]] = []
        try:
            # The narrow scope (a group) first: a full group never holds the bot's slots.
            for scope in reversed(scopes):
                # One waiter per scope and process asks the database; the others queue here.
                async with self._queues.setdefault(scope.name, asyncio.Lock()):
                    taken.append((await self._take(scope), scope))
        except BaseException:
            await self.release(taken)
            raise
        return taken

    async def release(self, slots: list[tuple[int, Scope]]) -> None:
        """The send's answer arrived: each slot frees one period from now."""
        if not slots:
            return
        async with self.engine.begin() as conn:
            await send_slots.release(conn, [(slot_id, scope.period) for slot_id, scope in slots])

    async def _take(self, scope: Scope) -> int:
        """A slot in ``scope``, waiting until one is free."""
        while True:
            slot_id, wait = await self._try(scope)
            if slot_id is not None:
                return slot_id
            await asyncio.sleep(wait)

    async def _try(self, scope: Scope) -> tuple[int | None, float]:
        """Take a slot in ``scope``, or None and how long to wait before looking again."""
        async with self.engine.begin() as conn:
            slot_id, frees_in = await send_slots.take(conn, scope.name, scope.limit, IN_FLIGHT)
        if slot_id is not None:
            return slot_id, 0.0
        return None, max(0.001, min(frees_in.total_seconds(), POLL))
