"""Flood limits as sliding windows: per bot, per group and per private chat.

Counted the way the receiving server counts: a send occupies its window from its start until its
answer, then at its completion time, so the next sends are spaced whatever the network jitter.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass

log = logging.getLogger(__name__)


class SlidingWindow:
    """At most ``limit`` messages in any ``period`` seconds, as the receiving server counts them.

    A message occupies the window from the moment it is sent until its answer arrives, and is
    then counted at its completion time. The server saw it somewhere in between, so spacing the
    next sends from completion times keeps within the limit whatever the network jitter.
    A send of ``n`` API calls takes ``n`` slots (at most the whole window: such a send waits
    for an empty window and fills it).
    """

    __slots__ = ("_done", "in_flight", "limit", "paused_until", "period")

    def __init__(self, limit: int, period: float, margin: float = 0.005) -> None:
        self.limit = max(1, limit)
        self.period = period + margin
        self._done: deque[float] = deque()
        self.in_flight = 0
        self.paused_until = 0.0

    def slots(self, calls: int) -> int:
        """How many slots a send of ``calls`` API calls takes: 1 to the whole window."""
        return min(max(1, calls), self.limit)

    def next_free(self, now: float, calls: int = 1) -> float:
        """The earliest time a send of ``calls`` calls may start (``inf``: wait for a send to
        complete)."""
        while self._done and self._done[0] <= now - self.period:
            self._done.popleft()
        expire = len(self._done) + self.in_flight + self.slots(calls) - self.limit
        if expire <= 0:
            free = now
        elif expire <= len(self._done):
            free = self._done[expire - 1] + self.period
        else:
            free = math.inf
        return max(free, self.paused_until)

    def start(self, calls: int = 1) -> None:
        """A send of ``calls`` calls begins."""
        self.in_flight += self.slots(calls)

    def finish(self, now: float, calls: int = 1) -> None:
        """A send's answer (its last call's) arrived at ``now``."""
        n = self.slots(calls)
        self.in_flight -= n
        self._done.extend([now] * n)

    def seed(self, completed: list[float]) -> None:
        """Count sends completed at these times (another process's, before a restart)."""
        self._done = deque(sorted([*self._done, *completed]))

    def pause(self, until: float) -> None:
        """Allow nothing before ``until`` (a channel's retry_after)."""
        self.paused_until = max(self.paused_until, until)


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """Flood limits of one channel, per bot/sender: (messages, seconds) windows."""

    overall_window: tuple[int, float]
    group_window: tuple[int, float] | None = None
    chat_window: tuple[int, float] | None = None

    @classmethod
    def rates(
        cls,
        per_second: float,
        group_per_minute: float | None = None,
        chat_per_second: float | None = None,
    ) -> ChannelLimits:
        """Limits from rates as Telegram states them (30/s, 20/min per group, 1/s per chat)."""
        return cls(
            _as_window(per_second, 1.0),
            _as_window(group_per_minute / 60.0, 60.0) if group_per_minute else None,
            _as_window(chat_per_second, 1.0) if chat_per_second else None,
        )

    def overall(self) -> SlidingWindow:
        return SlidingWindow(*self.overall_window)

    def for_chat(self, chat_id: int) -> SlidingWindow | None:
        window = self.group_window if chat_id < 0 else self.chat_window
        return SlidingWindow(*window) if window else None


def _as_window(rate: float, period: float) -> tuple[int, float]:
    """A rate per period as (count, seconds); rates below one per period stretch the period."""
    if rate * period >= 1:
        return (round(rate * period), period)
    return (1, 1.0 / rate)
