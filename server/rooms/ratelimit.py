"""A token bucket per socket: a burst is allowed, a flood is refused, then cut off."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Bucket:
    rate: float  # tokens per second
    burst: float
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(default=-1.0)
    stamp: float = 0.0
    refusals: int = 0

    def take(self) -> bool:
        now = self.clock()
        if self.tokens < 0:
            self.tokens, self.stamp = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= self.burst:  # a quiet spell forgives earlier refusals
            self.refusals = 0
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        self.refusals += 1
        return False

    @property
    def flooding(self) -> bool:
        """Refused as many times as a whole burst without a quiet spell: not slowing down."""
        return self.refusals >= self.burst
