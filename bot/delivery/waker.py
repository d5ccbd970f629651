"""Waking the sender after a commit: this process's dispatcher, and on PostgreSQL (several
workers) whichever worker holds the sender role, by ``NOTIFY ktn_outbox``."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from storage.outbox import wake_sender

log = logging.getLogger(__name__)


class Notifier(Protocol):
    """Something to tell that outbox rows were committed."""

    def notify(self) -> None: ...


@dataclass
class Waker:
    """Wakes the sender: this process's dispatcher, and on PostgreSQL whichever worker sends.

    Call after the commit. On PostgreSQL a NOTIFY reaches the worker holding the sender role
    (it LISTENs on its lock connection); repeated calls while one is on its way are folded into
    one more NOTIFY after it, so rows committed meanwhile are never left waiting for a sweep.
    """

    engine: AsyncEngine
    local: Notifier
    shared: bool
    _task: asyncio.Task[None] | None = None
    _again: bool = False

    def notify(self) -> None:
        """Rows were committed: wake the sender now."""
        self.local.notify()
        if not self.shared:
            return
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = asyncio.create_task(self._send(), name="outbox-notify")

    async def _send(self) -> None:
        while True:
            self._again = False
            try:
                async with self.engine.connect() as conn:
                    await wake_sender(conn)
                    await conn.commit()
            except Exception:  # the sweep still finds the rows; only the wake-up is late
                log.warning("could not NOTIFY the sender", exc_info=True)
            if not self._again:
                return
