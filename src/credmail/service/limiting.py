"""Count recent outgoing mail for a decision's recipients, then apply the pure limits."""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog

from credmail.core.addresses import normalize_address
from credmail.core.limits import (
    TEMPLATE_RATE_LIMITED,
    Limits,
    Usage,
    account_key,
    apply_limits,
)
from credmail.core.values import Decision, SendLink, SendReply
from credmail.service.ports import UnitOfWork

DAY, QUARTER_HOUR, HOUR = timedelta(days=1), timedelta(minutes=15), timedelta(hours=1)


class RateLimiter:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.log = structlog.get_logger("credmail.limits")

    def limit(self, uow: UnitOfWork, decision: Decision, now: datetime) -> Decision:
        outgoing = [a for a in decision.actions if isinstance(a, SendLink | SendReply)]
        if not outgoing:
            return decision
        keys = {a.to: normalize_address(a.to) for a in outgoing}
        limited = apply_limits(decision, self._usage(uow, outgoing, keys, now), self.limits, keys)
        if limited.trip_breaker:
            uow.breaker.trip(now, "global hourly cap reached")
            self.log.error(
                "limits.breaker_tripped",
                cap=self.limits.global_replies_per_hour,
                hint="every request now goes to review; run `credmail limits reset`",
            )
        return limited.decision

    def _usage(
        self,
        uow: UnitOfWork,
        outgoing: list[SendLink | SendReply],
        keys: dict[str, str],
        now: datetime,
    ) -> Usage:
        outbox = uow.outbox
        per_address = {
            key: outbox.mail_to(key, now - DAY, TEMPLATE_RATE_LIMITED) for key in keys.values()
        }
        return Usage(
            account_links_15m={
                account_key(a.username, a.purpose): outbox.links_for_account(
                    a.username, a.purpose, now - QUARTER_HOUR
                )
                for a in outgoing
                if isinstance(a, SendLink)
            },
            address_replies_24h={key: all_mail for key, (all_mail, _, _) in per_address.items()},
            address_links_24h={key: links for key, (_, links, _) in per_address.items()},
            notice_sent_24h={key: notices > 0 for key, (_, _, notices) in per_address.items()},
            global_replies_1h=outbox.mail_since(_global_window(uow, now)),
            breaker_tripped=uow.breaker.tripped(),
        )


def _global_window(uow: UnitOfWork, now: datetime) -> datetime:
    """The last hour, or less when an operator reset the breaker within it."""
    reset_at = uow.breaker.counting_since()
    return max(now - HOUR, reset_at) if reset_at else now - HOUR
