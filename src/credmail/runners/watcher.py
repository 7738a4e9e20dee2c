"""The inbox watcher: sync, then wait on IDLE (or a poll tick), forever; never dies."""

from __future__ import annotations

import threading

import structlog
from imapclient.exceptions import LoginError

from credmail.diagnostics import explain
from credmail.runners.backoff import Backoff
from credmail.runners.systemd import Heartbeat
from credmail.service.pipeline import Pipeline
from credmail.service.ports import MailSource

LOGIN_RETRY_SECONDS = 300.0


class InboxWatcher:
    """Owns the mail source (one connection, one thread)."""

    def __init__(
        self,
        pipeline: Pipeline,
        source: MailSource,
        stop: threading.Event,
        heartbeat: Heartbeat | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.source = source
        self.stop = stop
        self.heartbeat = heartbeat or Heartbeat()
        self.poll_now = threading.Event()
        self.backoff = Backoff()
        self.log = structlog.get_logger("credmail.watcher")

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self._cycle()
        finally:
            self.source.close()

    def _cycle(self) -> None:
        try:
            stats = self.pipeline.sync(self.source, should_stop=self._progress)
            if stats.handled:
                self.log.info("sync.done", scanned=stats.scanned, handled=stats.handled)
            self.backoff.reset()
            self.heartbeat.beat()
            self._wait()
        except LoginError as exc:
            self.log.error(
                "mailbox.login_failed",
                host=getattr(self.source, "host", None),
                error=explain(exc),  # the server's words and the keys to check, no secret
                retry_in_seconds=LOGIN_RETRY_SECONDS,
            )
            self.source.close()
            self.stop.wait(LOGIN_RETRY_SECONDS)
        except Exception as exc:
            delay = self.backoff.next_delay()
            self.log.warning(
                "sync.failed",
                error_type=type(exc).__name__,
                error=explain(exc),  # None for the unexpected: their text may hold data
                retry_in_seconds=round(delay, 1),
            )
            self.source.close()
            self.stop.wait(delay)

    def _progress(self) -> bool:
        """Called between messages: a long backlog is progress too; True means stop."""
        self.heartbeat.beat()
        return self.stop.is_set()

    def _wait(self) -> None:
        """Return when mail arrives, a reconciliation poll is due, or we are stopping."""
        while not self.stop.is_set() and not self.poll_now.is_set():
            if self.source.wait_for_mail(timeout=1.0):
                return
            self.heartbeat.beat()
        self.poll_now.clear()

