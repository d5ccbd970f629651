"""Rate limits of the Open311 API: a token bucket per name (an api key, a client address).

Each bucket holds up to ``per_minute`` requests and refills at ``per_minute`` per minute, so a
client may burst that many and then goes at the steady rate. The buckets live in this process:
with several workers (``run --workers N``) a client may get up to N times the rate, spread over
them. Buckets that are full again are forgotten when many are held, so memory stays bounded.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimiter:
    """Token buckets by name."""

    def __init__(
        self,
        per_minute: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_names: int = 10_000,
    ) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # tokens per second
        self.clock = clock
        self.max_names = max_names
        self._buckets: dict[str, tuple[float, float]] = {}  # name -> (tokens, at)

    def take(self, name: str) -> int:
        """Spend one request of ``name``: 0 when allowed, else the whole seconds to wait."""
        now = self.clock()
        tokens, at = self._buckets.get(name, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - at) * self.rate)
        if tokens < 1:
            self._buckets[name] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / self.rate))
        self._buckets[name] = (tokens - 1, now)
        if len(self._buckets) > self.max_names:
            self._forget_full(now)
        return 0

    def _forget_full(self, now: float) -> None:
        for name, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * self.rate >= self.capacity:
                del self._buckets[name]
