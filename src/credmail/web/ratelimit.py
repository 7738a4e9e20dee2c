"""Per-client limits of the reset page, counted in the database: every `credmail web`
process of a school (two replicas, two machines behind a load balancer) shares them.

A sliding window of `window` seconds, estimated from two fixed windows: the current
window's hits plus the previous window's, weighted by the share of it that still lies
within the last `window` seconds and rounded up (so the estimate never lets a client
through earlier than an exact sliding window would, and never holds it longer than two
windows). One read per check; one read and one atomic increment per hit.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Protocol


class Counter(Protocol):
    """Hits per (limit, client key, window start), shared by every process."""

    def counts(self, name: str, client: str, windows: tuple[int, int]) -> tuple[int, int]:
        """The hits in the previous and in the current window."""
        ...

    def add(
        self, name: str, client: str, window: int, below: int, purge_before: int | None = None
    ) -> bool:
        """One hit more in `window` unless it already holds `below` (atomically); deletes
        this limit's windows older than `purge_before` first."""
        ...


class SlidingWindow:
    """At most `limit` events per `window` seconds per key, under the name `name`."""

    def __init__(
        self,
        counter: Counter,
        name: str,
        limit: int,
        window: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.counter, self.name, self.limit, self.window = counter, name, limit, window
        self.clock = clock
        self._purged = 0  # the window this process last purged the older ones in

    def _state(self, key: str) -> tuple[int, int, int]:
        """(current window's start, its hits, the weighted hits of the previous one)."""
        now = self.clock()
        start = int(now // self.window) * self.window
        previous, current = self.counter.counts(self.name, key, (start - self.window, start))
        share = 1 - (now - start) / self.window
        return start, current, math.ceil(previous * share - 1e-9)

    def exceeded(self, key: str) -> bool:
        """True when `key` already used its allowance (nothing is recorded)."""
        _, current, previous = self._state(key)
        return current + previous >= self.limit

    def hit(self, key: str) -> bool:
        """Record one event; False when it is over the limit (then it is not recorded)."""
        start, current, previous = self._state(key)
        room = self.limit - previous
        if current >= room:
            return False
        purge = start - self.window if self._purged != start else None
        self._purged = start
        return self.counter.add(self.name, key, start, room, purge)
