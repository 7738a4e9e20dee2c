"""Count recent outgoing mail for a decision's recipients, then apply the pure limits."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo

import structlog

from credmail.core.addresses import normalize_address
from credmail.core.decide import TEMPLATE_ACKNOWLEDGE
from credmail.core.limits import (
    TEMPLATE_ALREADY_SENT,
    TEMPLATE_RATE_LIMITED,
    Limits,
    Usage,
    account_key,
    apply_limits,
    is_acknowledgement,
)
from credmail.core.values import Decision, SendLink, SendReply
from credmail.service.pacing import UNCOUNTED_TEMPLATES
from credmail.service.ports import OutboxCounts, UnitOfWork

DAY, QUARTER_HOUR, HOUR = timedelta(days=1), timedelta(minutes=15), timedelta(hours=1)


class RateLimiter:
    def __init__(
        self, limits: Limits, timezone: tzinfo = UTC, single_use_links: bool = True
    ) -> None:
        """`single_use_links`: a recent link counts only while still usable (token links);
        a URL template's link never stops being usable."""
        self.limits = limits
        self.timezone = timezone
        self.single_use_links = single_use_links
        self.log = structlog.get_logger("credmail.limits")

    def prefetch(
        self, uow: UnitOfWork, senders: Sequence[str], accounts: Sequence[str], now: datetime
    ) -> None:
        """Read at once the mail a batch's senders (as recipients) and accounts were sent
        in the widest window the limits look at; `limit` then counts it in memory."""
        uow.outbox.prefetch_recent(senders, accounts, now - DAY)

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
        last_links = self._last_links(outbox, outgoing, now)
        if self.single_use_links:
            last_links = _still_usable(uow, last_links, now)
        hourly = outbox.templates_since(_global_window(uow, now))
        acks = any(is_acknowledgement(a) for a in outgoing)
        return Usage(
            account_links_15m={account: count for account, (count, _) in last_links.items()},
            address_replies_24h={key: all_mail for key, (all_mail, _, _) in per_address.items()},
            address_links_24h={key: links for key, (_, links, _) in per_address.items()},
            notice_sent_24h={key: notices > 0 for key, (_, _, notices) in per_address.items()},
            global_replies_1h=sum(
                n
                for t, n in hourly.items()
                if t not in (TEMPLATE_ACKNOWLEDGE, *UNCOUNTED_TEMPLATES)
            ),
            acknowledgements_1h=_acknowledgements(outbox, now) if acks else 0,
            breaker_tripped=uow.breaker.tripped(),
            last_link_at={
                account: last.astimezone(self.timezone)
                for account, (_, last) in last_links.items()
                if last is not None
            },
            repeat_notice_sent=_repeat_notices(outbox, outgoing, keys, last_links),
        )

    def _last_links(
        self, outbox: OutboxCounts, outgoing: list[SendLink | SendReply], now: datetime
    ) -> dict[str, tuple[int, datetime | None]]:
        """Per account: links inside the window and the time of the newest."""
        return {
            account_key(a.username, a.purpose): outbox.account_links(
                a.username, a.purpose, now - QUARTER_HOUR
            )
            for a in outgoing
            if isinstance(a, SendLink)
        }


def _still_usable(
    uow: UnitOfWork, last_links: dict[str, tuple[int, datetime | None]], now: datetime
) -> dict[str, tuple[int, datetime | None]]:
    """An account's recent link counts only while one is still usable: a link already
    spent (the family confirmed), revoked or expired leaves nothing to wait for, so a new
    request is a new request, not a repeat (asked only when the window holds a link)."""
    usable = {}
    for account, (count, last) in last_links.items():
        username, _, purpose = account.rpartition("/")
        live = count > 0 and bool(uow.tokens.active(username, purpose, now))
        usable[account] = (count, last) if live else (0, None)
    return usable


def _acknowledgements(outbox: OutboxCounts, now: datetime) -> int:
    """Acknowledgements in the last hour (an operator's reset does not restart them)."""
    return outbox.templates_since(now - HOUR).get(TEMPLATE_ACKNOWLEDGE, 0)


def _repeat_notices(
    outbox: OutboxCounts,
    outgoing: list[SendLink | SendReply],
    keys: dict[str, str],
    last_links: dict[str, tuple[int, datetime | None]],
) -> dict[str, bool]:
    """Whether each link's address already got the calm repeat reply since that link."""
    sent = {}
    for action in outgoing:
        if not isinstance(action, SendLink):
            continue
        _, last = last_links[account_key(action.username, action.purpose)]
        if last is not None:
            key = keys[action.to]
            sent[key] = outbox.mail_to(key, last, TEMPLATE_ALREADY_SENT)[2] > 0
    return sent


def _global_window(uow: UnitOfWork, now: datetime) -> datetime:
    """The last hour, or less when an operator reset the breaker within it."""
    reset_at = uow.breaker.counting_since()
    return max(now - HOUR, reset_at) if reset_at else now - HOUR
