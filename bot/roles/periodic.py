"""Periodic jobs of the process (escalation sweeps now; schedules later), driven by the database.

Nothing is kept in memory between runs: each run asks the database what is due, so a restart
or a second worker loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass
class Periodic:
    """Run ``job`` every ``interval`` seconds until stopped; a failing run is logged, not fatal."""

    name: str
    interval: float
    job: Callable[[], Awaitable[object]]

    async def run(self, stop: asyncio.Event) -> None:
        """Run now, then every interval, until ``stop`` is set."""
        while not stop.is_set():
            try:
                await self.job()
            except Exception:
                log.exception("periodic job %s failed; trying again next interval", self.name)
            await wait_unless_set(stop, self.interval)


async def wait_unless_set(event: asyncio.Event, seconds: float) -> None:
    """Wait ``seconds``, or less if ``event`` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
