"""The nudge listener's thread: wake the outbox worker whenever another process commits
mail to send (adapters/db/nudge.py); never dies.

A lost connection (or socket) is opened again after a backoff; each (re)opening wakes the
worker once, for what was committed while nobody listened. Meanwhile the worker's own tick
(`daemon.outbox_interval_seconds`) still delivers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from credmail.runners.backoff import Backoff
from credmail.service.ports import NudgeListener

WAIT_SECONDS = 1.0  # how often the loop looks at the stop flag


class NudgeWatcher:
    """Owns the listener (one connection or socket, on this thread); `on_nudge` wakes the
    outbox worker."""

    def __init__(
        self,
        listener: NudgeListener,
        on_nudge: Callable[[], None],
        stop: threading.Event,
        mode: str,
    ) -> None:
        self.listener, self.on_nudge, self.stop, self.mode = listener, on_nudge, stop, mode
        self.backoff = Backoff(base=0.5, cap=30.0)
        self.log = structlog.get_logger("credmail.nudge")

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._listen()
            except Exception as exc:
                delay = self.backoff.next_delay()
                self.log.warning(
                    "nudge.lost",
                    mode=self.mode,
                    error_type=type(exc).__name__,
                    error=_first_line(exc),
                    retry_in_seconds=round(delay, 1),
                )
                self.stop.wait(delay)
            finally:
                self.listener.close()

    def _listen(self) -> None:
        self.listener.open()
        self.log.info("nudge.listening", mode=self.mode, reconnected=self.backoff.failures > 0)
        self.backoff.reset()
        self.on_nudge()  # what was committed while nobody listened
        while not self.stop.is_set():
            if self.listener.wait(WAIT_SECONDS):
                self.on_nudge()


def _first_line(exc: BaseException) -> str:
    """The driver's or the system's own words (a host, a path, an SQLSTATE's message; no
    secret, no address): the diagnostics' advice is about the mailbox and SMTP."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
