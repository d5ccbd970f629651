"""The recap job: every minute (``bot.periodic.Periodic``), ask the database which coordinators'
recaps are due and write them to the outbox (``handlers.recap``). Runs only where schedules run
(``[scheduler] enabled``), on the worker that holds the leader role (``bot.roles.leader``).

A recap that fails (``handlers.sweep``: rolled back alone, the others written) is reported to
``on_failure`` and not tried again while this process runs: it would fail the same way every
minute. A restart (with the cause fixed) tries it again; nothing else is kept between runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.config import CoreConfig
from handlers.context import Context
from handlers.recap import DEFAULT_HOUR, send_due_recaps
from handlers.sweep import FailureHook, ItemFailure
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
        on_failure: FailureHook | None = None,
    ) -> None:
        self.sessions = sessions
        self.config = config
        self.notify = notify
        self.hour = hour
        self.clock = clock
        self.on_failure = on_failure
        self.failed: set[str] = set()  # keys of the recaps that failed in this process

    async def run_once(self) -> int:
        """Write the recaps due now and commit; returns how many were written."""
        async with self.sessions() as session:
            rows = await send_due_recaps(
                session,
                Context(self.config, now=self.clock()),
                hour=self.hour,
                on_failure=self._failed,
                skip=self.failed,
            )
            await session.commit()
        if rows:
            log.info("recaps written: %d", len(rows))
            self.notify()
        return len(rows)

    def _failed(self, failure: ItemFailure) -> None:
        self.failed.add(failure.item)
        if self.on_failure is not None:
            self.on_failure(failure)
