"""The nudge without a channel (`daemon.nudge = "poll"`, and `auto` behind PgBouncer):
every `daemon.nudge_poll_seconds` one read of the outbox's due index, and a nudge when
what is due has changed since the last look (new mail queued, a retry come due).

Mail that stays due (delivery paused, a provider's quota) wakes the worker once, not at
every check; the worker's own tick comes back for it as before.
"""

from __future__ import annotations

import time

from credmail.service.ports import Clock, UnitOfWorkFactory


class OutboxPoll:
    """A `NudgeListener` over the database the daemon already uses."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, seconds: float) -> None:
        self.uow, self.clock, self.seconds = uow, clock, seconds
        self._seen: tuple[int, int] | None = None
        self._next = 0.0

    def open(self) -> None:
        self._seen, self._next = None, time.monotonic()

    def wait(self, timeout: float) -> bool:
        left = self._next - time.monotonic()
        if left > timeout:
            time.sleep(timeout)
            return False
        time.sleep(max(left, 0.0))
        self._next = time.monotonic() + self.seconds
        with self.uow(read_only=True) as uow:
            marker = uow.outbox.due_marker(self.clock())
        changed, self._seen = marker != self._seen, marker
        return changed and marker[0] > 0

    def close(self) -> None:
        pass
