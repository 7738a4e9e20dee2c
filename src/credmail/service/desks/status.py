"""The status desk: is credmail healthy (sync fresh, delivery flowing), and what waits."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from credmail.service.ports import Clock, UnitOfWork, UnitOfWorkFactory
from credmail.service.status import status


@dataclass(frozen=True)
class StatusReport:
    """`details` is the JSON view (see service.status for its keys); `failing_since_sent`:
    a delivery error was recorded after the last mail that went out (or none ever did)."""

    healthy: bool
    details: Mapping[str, Any]
    failing_since_sent: bool = False

    def as_json(self) -> dict[str, Any]:
        return dict(self.details)


SIGN_IN_OK, SIGN_IN_NEEDS_REAUTH, SIGN_IN_UNKNOWN = "ok", "needs_reauth", "unknown"
SIGN_IN_STATES = (SIGN_IN_OK, SIGN_IN_NEEDS_REAUTH, SIGN_IN_UNKNOWN)
"""The OAuth2 sign-in states the daemon records (unknown: none recorded yet)."""

SignIn = Callable[[], Mapping[str, Any] | None]
"""The OAuth2 sign-in state the daemon recorded: status, cause, fix (None without OAuth2)."""
QuotaPause = Callable[[], tuple[datetime, str] | None]
"""(until, reason) of the pause a provider's quota reply put on the whole outbox."""


def no_sign_in() -> Mapping[str, Any] | None:
    return None


def no_pause() -> tuple[datetime, str] | None:
    return None


class StatusDesk:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        stale_after: timedelta,
        outbox_stale_after: timedelta,
        sign_in: SignIn = no_sign_in,
        quota_pause: QuotaPause = no_pause,
    ) -> None:
        self.uow, self.clock = uow, clock
        self.stale_after, self.outbox_stale_after = stale_after, outbox_stale_after
        self.sign_in, self.quota_pause = sign_in, quota_pause

    def report(self) -> StatusReport:
        now = self.clock()
        with self.uow(read_only=True) as uow:
            details = status(uow, now, self.stale_after, self.outbox_stale_after)
            failing = _failing_since_sent(uow)
        sign_in = details["sign_in"] = self.sign_in()
        details["outbox_paused_until"] = paused_until(self.quota_pause, now)
        if sign_in is not None and sign_in["status"] == SIGN_IN_NEEDS_REAUTH:
            details["healthy"] = False
        return StatusReport(bool(details["healthy"]), details, failing)


def _failing_since_sent(uow: UnitOfWork) -> bool:
    failed_at = uow.outbox.delivery_state().last_error_at
    sent_at = uow.outbox.last_sent()
    return failed_at is not None and (sent_at is None or failed_at > sent_at)


def paused_until(quota_pause: QuotaPause, now: datetime) -> tuple[str, str] | None:
    """(until as ISO text, reason) while a quota pause is in force."""
    paused = quota_pause()
    if paused is None or paused[0] <= now:
        return None
    return paused[0].isoformat(), paused[1]
