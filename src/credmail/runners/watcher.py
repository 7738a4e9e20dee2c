"""The inbox watcher: sync, then wait on IDLE (or a poll tick), forever; never dies."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

from credmail.adapters.oauth import SignInError
from credmail.diagnostics import explain
from credmail.runners.backoff import Backoff
from credmail.runners.systemd import Heartbeat
from credmail.service.inbox_sync import Pipeline
from credmail.service.ports import MailSource

LOGIN_RETRY_SECONDS = 300.0
SIGNED_OUT_CHECK_SECONDS = 1.0  # cheap: the token source asks once per retry period


def _expired_session(source: MailSource, exc: Exception) -> bool:
    expired = getattr(source, "expired_session", None)
    return bool(expired is not None and expired(exc))


class InboxWatcher:
    """Owns the mail source (one connection, one thread)."""

    def __init__(
        self,
        pipeline: Pipeline,
        source: MailSource,
        stop: threading.Event,
        heartbeat: Heartbeat | None = None,
        is_login_failure: Callable[[BaseException], bool] = lambda exc: False,
    ) -> None:
        """`is_login_failure` tells a refused sign-in (retried slowly) from the rest."""
        self.pipeline = pipeline
        self.is_login_failure = is_login_failure
        self.source = source
        self.stop = stop
        self.heartbeat = heartbeat or Heartbeat()
        self.poll_now = threading.Event()
        self.backoff = Backoff()
        self.signed_out: str | None = None  # the STATUS= line while sign-in is impossible
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
            if self.signed_out is not None:
                self.heartbeat.status("signed in")
                self.signed_out = None
            self.heartbeat.beat()
            self._wait()
        except SignInError as exc:
            self._signed_out(exc)
        except Exception as exc:
            if self.is_login_failure(exc):
                self.log.error(
                    "mailbox.login_failed",
                    host=getattr(self.source, "host", None),
                    error=explain(exc),  # the server's words and the keys to check, no secret
                    retry_in_seconds=LOGIN_RETRY_SECONDS,
                )
                self.source.close()
                self.stop.wait(LOGIN_RETRY_SECONDS)
                return
            if _expired_session(self.source, exc):  # not an outage: sign in again now
                self.log.info("mailbox.token_expired", action="reconnect")
                self.source.close()
                return
            delay = self.backoff.next_delay()
            self.log.warning(
                "sync.failed",
                error_type=type(exc).__name__,
                error=explain(exc),  # None for the unexpected: their text may hold data
                retry_in_seconds=round(delay, 1),
            )
            self.source.close()
            self.stop.wait(delay)

    def _signed_out(self, exc: SignInError) -> None:
        """No token: the daemon stays up (watchdog fed, cause in STATUS=); the token
        source itself asks the identity provider at most once per retry period."""
        self.source.close()
        if exc.permanent:
            status = f"needs re-authorisation: {exc.cause}; {exc.fix}"
            if status != self.signed_out:
                self.heartbeat.status(status)
                self.signed_out = status
            self.heartbeat.beat()
            self.stop.wait(SIGNED_OUT_CHECK_SECONDS)
            return
        delay = self.backoff.next_delay()
        self.log.warning("mailbox.no_token", cause=exc.cause, retry_in_seconds=round(delay, 1))
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
