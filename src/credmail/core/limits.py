"""Abuse limits as a pure step after `decide`: over a limit, hold for review instead.

The caller counts recent outgoing mail (usage) for the accounts and addresses that the
decision would write to, and looks up when each account last got a link; this module
only compares. Acknowledgements to unknown senders have their own small hourly cap and
never count toward (nor trip) the global breaker, which guards the genuine answers.
A repeat request inside the per-account window gets one calm reply, not a review item.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime

from credmail.core.decide import TEMPLATE_ACKNOWLEDGE
from credmail.core.recipients import PURPOSE_STUDENT
from credmail.core.values import Action, Decision, HoldForReview, Outcome, SendLink, SendReply

TEMPLATE_RATE_LIMITED = "rate_limited"
TEMPLATE_ALREADY_SENT = "link_already_sent"
BREAKER, RATE_LIMITED, ACK_LIMITED = "circuit_breaker", "rate_limited", "acknowledgement_limited"
HOLD_REASONS = (BREAKER, RATE_LIMITED, ACK_LIMITED)
"""The review reasons the limits add."""


@dataclass(frozen=True)
class Limits:
    account_links_per_15_minutes: int = 1
    address_links_per_day: int = 3
    sender_replies_per_day: int = 5
    global_replies_per_hour: int = 300
    acknowledgements_per_hour: int = 20


@dataclass(frozen=True)
class Usage:
    """Recent outgoing mail, counted by the caller (keys: 'username/purpose', address key).

    `global_replies_1h` leaves acknowledgements out; they are `acknowledgements_1h`.
    `last_link_at` is each account's newest link inside the per-account window, in the
    school's timezone; `repeat_notice_sent` tells whether an address already got the calm
    repeat reply since that link.
    """

    account_links_15m: Mapping[str, int] = field(default_factory=dict)
    address_links_24h: Mapping[str, int] = field(default_factory=dict)
    address_replies_24h: Mapping[str, int] = field(default_factory=dict)
    notice_sent_24h: Mapping[str, bool] = field(default_factory=dict)
    global_replies_1h: int = 0
    acknowledgements_1h: int = 0
    breaker_tripped: bool = False
    last_link_at: Mapping[str, datetime] = field(default_factory=dict)
    repeat_notice_sent: Mapping[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Limited:
    decision: Decision
    trip_breaker: bool = False


def account_key(username: str, purpose: str) -> str:
    return f"{username}/{purpose}"


def is_acknowledgement(action: Action) -> bool:
    return isinstance(action, SendReply) and action.template == TEMPLATE_ACKNOWLEDGE


def apply_limits(
    decision: Decision, usage: Usage, limits: Limits, key: Mapping[str, str]
) -> Limited:
    """`key` maps each recipient address to its lookup key (normalized form)."""
    decision = _limit_acknowledgements(decision, usage, limits, key)
    outgoing = [
        a
        for a in decision.actions
        if isinstance(a, SendLink | SendReply) and not is_acknowledgement(a)
    ]
    if not outgoing:
        return Limited(decision)
    if usage.breaker_tripped:
        return Limited(_hold(decision, BREAKER))
    if usage.global_replies_1h + len(outgoing) > limits.global_replies_per_hour:
        return Limited(_hold(decision, BREAKER), trip_breaker=True)
    over = [a for a in outgoing if _over(a, usage, limits, key[a.to])]
    if not over:
        return Limited(decision)
    repeat = _repeat(over, usage, limits, key)
    if repeat is not None:
        return Limited(repeat)
    notices = tuple(
        SendReply(TEMPLATE_RATE_LIMITED, a.to)
        for a in over[:1]
        if not usage.notice_sent_24h.get(key[a.to], False)
    )
    return Limited(_hold(decision, RATE_LIMITED, notices))


def _limit_acknowledgements(
    decision: Decision, usage: Usage, limits: Limits, key: Mapping[str, str]
) -> Decision:
    """Drop acknowledgements over their own cap (or while the breaker is tripped)."""
    acks = [a for a in decision.actions if isinstance(a, SendReply) and is_acknowledgement(a)]
    if not acks:
        return decision
    capped = usage.breaker_tripped or usage.acknowledgements_1h >= limits.acknowledgements_per_hour
    if not capped and not any(_replies_exhausted(usage, limits, key[a.to]) for a in acks):
        return decision
    kept = tuple(a for a in decision.actions if not is_acknowledgement(a))
    reasons = (*decision.reasons, ACK_LIMITED)
    kept = tuple(HoldForReview(reasons) if isinstance(a, HoldForReview) else a for a in kept)
    return replace(decision, reasons=reasons, actions=kept)


def _over(action: SendLink | SendReply, usage: Usage, limits: Limits, address: str) -> bool:
    if _replies_exhausted(usage, limits, address):
        return True
    if isinstance(action, SendReply):
        return False
    links = usage.address_links_24h.get(address, 0)
    return _account_window_full(action, usage, limits) or links >= limits.address_links_per_day


def _replies_exhausted(usage: Usage, limits: Limits, address: str) -> bool:
    return usage.address_replies_24h.get(address, 0) >= limits.sender_replies_per_day


def _account_window_full(action: SendLink, usage: Usage, limits: Limits) -> bool:
    account = account_key(action.username, action.purpose)
    return usage.account_links_15m.get(account, 0) >= limits.account_links_per_15_minutes


def _repeat(
    over: list[SendLink | SendReply], usage: Usage, limits: Limits, key: Mapping[str, str]
) -> Decision | None:
    """A link asked again inside its account's window: one calm reply, never review."""
    if len(over) != 1 or not isinstance(over[0], SendLink):
        return None
    link = over[0]
    address = key[link.to]
    sent_at = usage.last_link_at.get(account_key(link.username, link.purpose))
    if sent_at is None or not _account_window_full(link, usage, limits):
        return None
    if _replies_exhausted(usage, limits, address):
        return None
    if usage.repeat_notice_sent.get(address, False):
        return Decision(Outcome.ANSWERED, ("repeat_request",), ())
    notice = SendReply(
        TEMPLATE_ALREADY_SENT,
        link.to,
        context=(("sent_at", sent_at.strftime("%H:%M")),),
        about=None if link.purpose == PURPOSE_STUDENT else link.username,  # a guardian: no name
    )
    return Decision(Outcome.ANSWERED, ("repeat_request",), (notice,))


def _hold(decision: Decision, reason: str, notices: tuple[Action, ...] = ()) -> Decision:
    reasons = (*decision.reasons, reason)
    return Decision(Outcome.REVIEW, reasons, (HoldForReview(reasons), *notices))
