"""Abuse limits as a pure step after `decide`: over a limit, hold for review instead.

The caller counts recent outgoing mail (usage) for the accounts and addresses that the
decision would write to; this module only compares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from credmail.core.values import Action, Decision, HoldForReview, Outcome, SendLink, SendReply

TEMPLATE_RATE_LIMITED = "rate_limited"


@dataclass(frozen=True)
class Limits:
    account_links_per_15_minutes: int = 1
    address_links_per_day: int = 3
    sender_replies_per_day: int = 5
    global_replies_per_hour: int = 300


@dataclass(frozen=True)
class Usage:
    """Recent outgoing mail, counted by the caller (keys: 'username/purpose', address key)."""

    account_links_15m: Mapping[str, int] = field(default_factory=dict)
    address_links_24h: Mapping[str, int] = field(default_factory=dict)
    address_replies_24h: Mapping[str, int] = field(default_factory=dict)
    notice_sent_24h: Mapping[str, bool] = field(default_factory=dict)
    global_replies_1h: int = 0
    breaker_tripped: bool = False


@dataclass(frozen=True)
class Limited:
    decision: Decision
    trip_breaker: bool = False


def account_key(username: str, purpose: str) -> str:
    return f"{username}/{purpose}"


def apply_limits(
    decision: Decision, usage: Usage, limits: Limits, key: Mapping[str, str]
) -> Limited:
    """`key` maps each recipient address to its lookup key (normalized form)."""
    outgoing = [a for a in decision.actions if isinstance(a, SendLink | SendReply)]
    if not outgoing:
        return Limited(decision)
    if usage.breaker_tripped:
        return Limited(_hold(decision, "circuit_breaker"))
    if usage.global_replies_1h + len(outgoing) > limits.global_replies_per_hour:
        return Limited(_hold(decision, "circuit_breaker"), trip_breaker=True)
    over = [a for a in outgoing if _over(a, usage, limits, key[a.to])]
    if not over:
        return Limited(decision)
    notices = tuple(
        SendReply(TEMPLATE_RATE_LIMITED, a.to)
        for a in over[:1]
        if not usage.notice_sent_24h.get(key[a.to], False)
    )
    return Limited(_hold(decision, "rate_limited", notices))


def _over(action: SendLink | SendReply, usage: Usage, limits: Limits, address: str) -> bool:
    replies = usage.address_replies_24h.get(address, 0)
    if replies >= limits.sender_replies_per_day:
        return True
    if isinstance(action, SendReply):
        return False
    account = usage.account_links_15m.get(account_key(action.username, action.purpose), 0)
    links = usage.address_links_24h.get(address, 0)
    return account >= limits.account_links_per_15_minutes or links >= limits.address_links_per_day


def _hold(decision: Decision, reason: str, notices: tuple[Action, ...] = ()) -> Decision:
    reasons = (*decision.reasons, reason)
    return Decision(Outcome.REVIEW, reasons, (HoldForReview(reasons), *notices))
