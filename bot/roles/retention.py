"""The leader's retention duty: each kind of data forgotten once its period ends (``[retention]``,
``storage.retention``), in batches.

Every batch is its own short transaction of at most ``[retention] batch`` rows, followed by a
pause of ``pause_ms``: the purge of a backlog (a first run on a database kept for years) never
holds SQLite's write lock or PostgreSQL's row locks for long, and alerts go out meanwhile
(bench/purge.py measures it). Report media go in two steps: their rows first, then each file
from the media store (local folder or S3) once nothing else refers to it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import RetentionSettings
from bot.database import Database
from bot.media.library import MediaLibrary
from bot.metrics import Metrics
from bot.roles.periodic import wait_unless_set
from storage import retention
from storage.types import utcnow

log = logging.getLogger(__name__)

# The kinds in the order they are purged (names as in [retention] without "_days").
KINDS = (
    "processed_inbound",
    "closed_report_personal",
    "media",
    "outbox_text",
    "conversation",
    "report_event_note",
    "desk_session",
    "access_log",
)
Batch = Callable[[AsyncSession, datetime, int], Awaitable[int]]


@dataclass
class Purger:
    """Forgets every kind past its period; ``run_once`` is the leader's hourly job."""

    db: Database
    settings: RetentionSettings
    placeholder: str  # what replaces a stripped report's description
    metrics: Metrics | None = None
    media: MediaLibrary | None = None
    clock: Callable[[], datetime] = utcnow
    batches: dict[str, int] = field(default_factory=dict)  # batches run per kind, last run
    # Set when the process stops or steps down: the purge ends after its current batch (the
    # rest is done by whoever leads next), never holding a shutdown back.
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run_once(self) -> dict[str, int]:
        """Purge every kind once; returns how many rows of each went."""
        now = self.clock()
        purged: dict[str, int] = {}
        for kind, days in self.settings.days().items():
            if days <= 0 or self.stop.is_set():
                continue
            count = await self.purge(kind, now - timedelta(days=days))
            if count:
                purged[kind] = count
                log.info("retention: %d %s row(s) older than %d days", count, kind, days)
        return purged

    async def purge(self, kind: str, before: datetime) -> int:
        """Purge one kind, a batch per transaction, until a batch comes back short."""
        step = self._batch(kind)
        limit = self.settings.batch
        total = batches = 0
        while True:
            async with self.db.sessions() as session:
                count = await step(session, before, limit)
                await session.commit()
            batches += 1
            total += count
            if count and self.metrics is not None:
                self.metrics.retention_purged.labels(kind=kind).inc(count)
            if count < limit or self.stop.is_set():
                break
            await wait_unless_set(self.stop, self.settings.pause_ms / 1000)  # others' turn
        self.batches[kind] = batches
        return total

    def _batch(self, kind: str) -> Batch:
        now = self.clock()
        simple: dict[str, Batch] = {
            "processed_inbound": retention.forget_processed_inbound,
            "conversation": retention.forget_conversations,
            "report_event_note": retention.clear_event_notes,
            "desk_session": retention.forget_desk_sessions,
            "access_log": retention.forget_access_log,
        }
        if kind in simple:
            return simple[kind]

        async def closed(session: AsyncSession, before: datetime, limit: int) -> int:
            return await retention.strip_closed_reports(
                session, before, placeholder=self.placeholder, now=now, limit=limit
            )

        async def outbox_text(session: AsyncSession, before: datetime, limit: int) -> int:
            return await retention.purge_outbox_texts(session, before, now=now, limit=limit)

        async def media(session: AsyncSession, before: datetime, limit: int) -> int:
            count, refs = await retention.forget_report_media(session, before, limit)
            if refs and self.media is not None:
                await session.commit()  # the rows first: then the files nothing refers to
                await self.media.release(sorted(refs), held=False)
            return count

        steps = {"closed_report_personal": closed, "outbox_text": outbox_text, "media": media}
        return steps[kind]
