"""The outbox worker: drains on a nudge (a new reply) or on the retry tick."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable

import structlog

from credmail.service.outbox.delivery import OutboxDelivery


class OutboxWorker:
    def __init__(
        self,
        delivery: OutboxDelivery,
        stop: threading.Event,
        refill: Callable[[], int] | None = None,
    ) -> None:
        """`refill`: after each drain, queue more bulk mail (the campaign's next batch);
        when it queued some, drain again."""
        self.delivery = delivery
        self.stop = stop
        self.refill = refill
        self.wake = threading.Event()
        self.log = structlog.get_logger("credmail.outbox")

    def nudge(self) -> None:
        self.wake.set()

    def run(self) -> None:
        """One event loop for every drain, so the SMTP connection can stay open between
        them (`smtp.keep_alive_seconds`); closed when the worker stops."""
        with asyncio.Runner() as loop:
            try:
                self._work(loop)
            finally:
                with contextlib.suppress(Exception):
                    loop.run(self.delivery.close())

    def _work(self, loop: asyncio.Runner) -> None:
        while not self.stop.is_set():
            self.wake.wait()
            self.wake.clear()
            if self.stop.is_set():
                return
            try:
                loop.run(self.delivery.drain(keep_open=True))
                if self.refill is not None and self.refill() > 0:
                    self.wake.set()
            except Exception as exc:
                self.log.warning("outbox.drain_failed", error_type=type(exc).__name__)
