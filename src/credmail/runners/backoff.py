"""Exponential backoff with full jitter for reconnect loops."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    base: float = 1.0
    cap: float = 300.0
    failures: int = 0

    def next_delay(self) -> float:
        self.failures += 1
        return random.uniform(self.base, min(self.cap, self.base * 2**self.failures))

    def reset(self) -> None:
        self.failures = 0
