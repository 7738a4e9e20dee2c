"""The inbox watcher: sync, then wait on IDLE (or a poll tick), forever; never dies."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from credmail.runners.backoff import Backoff
from credmail.runners.systemd import Heartbeat
from credmail.service.inbox_sync import Pipeline
from credmail.service.ports import MailSource
from credmail.service.source_errors import MissingFolder, SignInError

LOGIN_RETRY_SECONDS = 300.0  # a refused sign-in or a missing folder: someone must act
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
        slow_retry_seconds: float = LOGIN_RETRY_SECONDS,
        explain: Callable[[BaseException], str | None] = lambda exc: None,
    ) -> None:
        """`is_login_failure` tells a refused sign-in (retried slowly) from the rest;
        `explain` words an expected failure for the log (bootstrap's; None: not one)."""
        self.pipeline = pipeline
        self.explain = explain
        self.is_login_failure = is_login_failure
        self.slow_retry = slow_retry_seconds
        self.source = source
        self.stop = stop
        self.heartbeat = heartbeat or Heartbeat()
        self.poll_now = threading.Event()
        self.backoff = Backoff()
        self.signed_out: str | None = None  # the STATUS= line while sign-in is impossible
        self.missing: str | None = None  # the watched folder, while the mailbox lacks it
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
            self._recovered()
            self.heartbeat.beat()
            self._wait()
        except SignInError as exc:
            self._signed_out(exc)
        except MissingFolder as exc:
            self._folder_missing(exc)
        except Exception as exc:
            if self.is_login_failure(exc):
                self.log.error(
                    "mailbox.login_failed",
                    host=getattr(self.source, "host", None),
                    error=self.explain(exc),  # the server's words and the keys to check, no secret
                    retry_in_seconds=self.slow_retry,
                )
                self.source.close()
                self.stop.wait(self.slow_retry)
                return
            if _expired_session(self.source, exc):  # not an outage: sign in again now
                self.log.info("mailbox.token_expired", action="reconnect")
                self.source.close()
                return
            delay = self.backoff.next_delay()
            self.log.warning(
                "sync.failed",
                error_type=type(exc).__name__,
                error=self.explain(exc),  # None for the unexpected: their text may hold data
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

    def _folder_missing(self, exc: MissingFolder) -> None:
        """The settings name a folder the mailbox lacks: said once (an error naming the key),
        then looked for again every `slow_retry` seconds; creating it is enough to recover.
        The watchdog stays fed: a restart could only say the same again."""
        self.source.close()
        if exc.folder != self.missing:
            self.missing = exc.folder
            self.heartbeat.status(f"mailbox.folder {exc.folder!r} does not exist")
            self.log.error(
                "mailbox.folder_missing",
                host=getattr(self.source, "host", None),
                folder=exc.folder,
                error=self.explain(exc),
                retry_in_seconds=self.slow_retry,
            )
        deadline = time.monotonic() + self.slow_retry
        while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
            self.heartbeat.beat()
            self.stop.wait(min(left, SIGNED_OUT_CHECK_SECONDS))

    def _recovered(self) -> None:
        """A sync succeeded: clear what STATUS= said was wrong."""
        if self.signed_out is not None:
            self.heartbeat.status("signed in")
            self.signed_out = None
        if self.missing is not None:
            self.log.info("mailbox.folder_found", folder=self.missing)
            self.heartbeat.status(f"watching {self.missing}")
            self.missing = None

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
