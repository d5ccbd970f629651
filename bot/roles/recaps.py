"""The recap job: every minute (``bot.periodic.Periodic``), ask the database which coordinators'
recaps are due and write them to the outbox (``handlers.recap``). Runs only where schedules run
(``[scheduler] enabled``; later behind leader election).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.config import CoreConfig
from handlers.context import Context
from handlers.recap import DEFAULT_HOUR, send_due_recaps
from storage.types import utcnow

log = logging.getLogger(__name__)


class RecapJob:
    """Writes the recaps that are due, once per run."""

    INTERVAL = 60.0  # seconds between runs

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        config: CoreConfig,
        notify: Callable[[], None],
        *,
        hour: int = DEFAULT_HOUR,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.notify = notify
        self.hour = hour
        self.clock = clock

    async def run_once(self) -> int:
        """Write the recaps due now and commit; returns how many were written."""
        async with self.sessions() as session:
            rows = await send_due_recaps(
                session, Context(self.config, now=self.clock()), hour=self.hour
            )
            await session.commit()
        if rows:
            log.info("recaps written: %d", len(rows))
            self.notify()
        return len(rows)
