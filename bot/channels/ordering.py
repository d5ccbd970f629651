"""One user's messages in arrival order, whatever the channel.

Messages of different users are handled concurrently; the messages of one user wait for each
other, so their conversation moves one step at a time and in the order they were sent. Both
channels use this: Telegram keys it by (chat, user), WhatsApp by the sender's number.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable


class ArrivalOrder:
    """A lock per key, held while one message of that key is handled; waiters go in arrival
    order (``asyncio.Lock`` wakes them first come, first served). A key's lock is forgotten as
    soon as nobody holds or waits for it, so memory stays bounded by the users in flight."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, asyncio.Lock] = {}
        self._waiting: dict[Hashable, int] = {}

    @contextlib.asynccontextmanager
    async def turn(self, key: Hashable) -> AsyncIterator[None]:
        """Wait for the key's earlier messages, then hold its lock for the block."""
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._waiting[key] = self._waiting.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._waiting[key] -= 1
            if self._waiting[key] == 0:
                del self._waiting[key]
                self._locks.pop(key, None)

    def __len__(self) -> int:
        """How many keys have a message in hand or waiting."""
        return len(self._locks)
