"""Delivery status callbacks: record each outbox row's status, only ever forward.

Twilio posts ``MessageStatus`` for every step (sent, delivered, read, or undelivered/failed
with an ``ErrorCode``); callbacks may repeat and arrive out of order. The update is one
conditional ``UPDATE ... WHERE status IN (allowed predecessors)``, so concurrent callbacks
cannot move a row backwards either.

A callback can also beat the dispatcher: the message is accepted, Twilio reports "delivered",
and only then does the dispatcher record the SID with the rest of its batch. Such a status is
held in memory and applied once the row is recorded: up to five minutes for a SID this process
sent (``SentLog``), 30 seconds for any other (the earlier parts of a split message have no row
and are dropped then). Held statuses are lost on a restart; the row then stays "sent".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from bot.channels.whatsapp.sender import SentLog
from bot.channels.whatsapp.statuses import STATUS_MOVES, error_text
from bot.roles.periodic import wait_unless_set
from storage import delivery
from storage.db import Sessions
from storage.types import Channel, OutboxStatus, utcnow

log = logging.getLogger(__name__)

UNRECORDED = (OutboxStatus.PENDING.value, OutboxStatus.SENDING.value)


class Recorded(StrEnum):
    APPLIED = "applied"  # the row moved forward
    IGNORED = "ignored"  # a repeat or a step back
    HELD = "held"  # sent by us, not recorded yet: applied when it is
    UNKNOWN = "unknown"  # no such row (yet): held briefly, then dropped (e.g. a split part)


@dataclass
class _Held:
    statuses: list[tuple[OutboxStatus, str | None]] = field(default_factory=list)
    deadline: float = 0.0


class StatusBook:
    """Applies status callbacks to outbox rows; holds the early ones for a while."""

    def __init__(
        self,
        sessions: Sessions,
        sent_log: SentLog,
        *,
        hold_seconds: float = 300.0,
        grace_seconds: float = 30.0,
        poll_seconds: float = 0.2,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sessions = sessions
        self.sent_log = sent_log
        self.hold_seconds = hold_seconds
        self.grace_seconds = grace_seconds
        self.poll_seconds = poll_seconds
        self.clock = clock
        self.monotonic = monotonic
        self._held: dict[str, _Held] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def record(self, sid: str, status: OutboxStatus, error_code: str | None) -> Recorded:
        """Apply one callback (forward only), or hold it until its row is recorded: for
        ``hold_seconds`` when this process sent the SID, else ``grace_seconds`` (the callback
        may have overtaken the answer to our own request)."""
        found = await self._apply(sid, status, error_code)
        if found is not None:
            return found
        known = self.sent_log.row_of(sid) is not None
        deadline = self.monotonic() + (self.hold_seconds if known else self.grace_seconds)
        held = self._held.setdefault(sid, _Held())
        held.statuses.append((status, error_code))
        held.deadline = max(held.deadline, deadline)
        self._ensure_task()
        self._wake.set()
        return Recorded.HELD if known else Recorded.UNKNOWN

    @property
    def held(self) -> int:
        """How many SIDs have statuses waiting for their row."""
        return len(self._held)

    async def close(self) -> None:
        """Stop applying held statuses (they are lost: the rows keep "sent")."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._held:
            log.info("%d early delivery status(es) dropped at shutdown", len(self._held))

    async def _apply(
        self, sid: str, status: OutboxStatus, error_code: str | None
    ) -> Recorded | None:
        """Recorded, or None when no recorded row has this SID yet."""
        allowed = [s.value for s in STATUS_MOVES.get(status, ())]
        at = self.clock()
        reason = error_text(error_code)
        async with self.sessions() as session:
            row = await delivery.status_of(session, Channel.WHATSAPP.value, sid)
            if row is None:
                return None
            row_id, current = row
            if current in UNRECORDED or not allowed:
                # A repeat of "sent", or a row queued again by an admin: old news.
                return Recorded.IGNORED
            moved = await delivery.move_status(
                session, row_id, status.value, allowed=allowed, at=at, last_error=reason
            )
            await session.commit()
        if moved and status in (OutboxStatus.FAILED, OutboxStatus.UNDELIVERED):
            log.warning("outbox row %d %s: %s", row_id, status.value, reason or "no error code")
        return Recorded.APPLIED if moved else Recorded.IGNORED

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._apply_held(), name="whatsapp-held-statuses")

    async def _recorded(self, sids: list[str]) -> set[str]:
        """Which of these SIDs the dispatcher has recorded by now (one query)."""
        async with self.sessions() as session:
            return await delivery.recorded(session, Channel.WHATSAPP.value, sids)

    async def _apply_held(self) -> None:
        """Apply held statuses once their rows are recorded; drop them at their deadline."""
        while self._held:
            try:
                ready = await self._recorded(list(self._held))
                for sid in ready:
                    # Counted as held until applied; statuses arriving meanwhile wait their turn.
                    held = self._held[sid]
                    applying = list(held.statuses)
                    for status, error_code in applying:  # in arrival order: forward only
                        await self._apply(sid, status, error_code)
                    del held.statuses[: len(applying)]
                    if not held.statuses:
                        del self._held[sid]
            except Exception:
                log.warning("applying held delivery statuses failed", exc_info=True)
            now = self.monotonic()
            for sid in [sid for sid, held in self._held.items() if held.deadline < now]:
                log.debug("delivery status of %s dropped: no row has that SID", sid)
                del self._held[sid]
            if self._held:
                self._wake.clear()
                await wait_unless_set(self._wake, self.poll_seconds)
