"""What to do with a near miss: flag it for the secretariat, and in `guide` mode answer
with how to ask (never a link). Pure: frozen facts in, a NearMissDecision out.

The guide reply keeps every guard of the other replies: never to automated, list or bulk
mail, never to the school's own addresses, never to a reply to credmail's own mail, only
to an authenticated sender, once per sender per `near_miss_guide_days`; the rate limits
and the Auto-Submitted header are applied where every reply is queued.
"""

from __future__ import annotations

from dataclasses import dataclass

from credmail.core.automated import automated_reasons
from credmail.core.near_miss import NearMissRules, NearMissVerdict, classify_near_miss
from credmail.core.values import Facts, Role, SendReply

MODES = ("ignore", "flag", "guide")
TEMPLATE_GUIDE = "near_miss_guide"
STAFF_ROLES = frozenset({Role.TEACHER, Role.STAFF, Role.HEAD})
# A family answering credmail's own mail is not a robot: flagged, never guided again.
_NOT_AUTOMATED = frozenset({"reply_to_our_mail"})


@dataclass(frozen=True)
class NearMissPolicy:
    """[classify] near_miss and its settings (README, "Near misses")."""

    mode: str = "ignore"
    rules: NearMissRules | None = None
    guide_days: int = 30
    keyword: str = "ForseCredenziali"

    @property
    def active(self) -> bool:
        return self.mode != "ignore" and self.rules is not None


@dataclass(frozen=True)
class NearMissDecision:
    """The verdict, whether to flag the message, the guide reply (or None) and why not."""

    verdict: NearMissVerdict
    flag: bool
    guide: SendReply | None = None
    reasons: tuple[str, ...] = ()  # the rule, then why no guide was sent

    @property
    def rule(self) -> str:
        return self.verdict.rule


def sender_traits(facts: Facts) -> tuple[str, ...]:
    """What the rules may ask of the sender: "automated", "staff"."""
    traits: list[str] = []
    if set(automated_reasons(facts)) - _NOT_AUTOMATED:
        traits.append("automated")
    if any(person.role in STAFF_ROLES for person in facts.people_on_file):
        traits.append("staff")
    return tuple(traits)


def classify(facts: Facts, rules: NearMissRules) -> NearMissVerdict:
    mail = facts.mail
    text = mail.text or mail.html_text
    return classify_near_miss(mail.classified_subject, text, rules, sender_traits(facts))


def decide_near_miss(
    facts: Facts, rules: NearMissRules, mode: str, guided_recently: bool
) -> NearMissDecision:
    """Flag a near miss (`flag`, `guide`), and in `guide` mode say whether to answer."""
    verdict = classify(facts, rules)
    if mode == "ignore" or not verdict.near_miss:
        return NearMissDecision(verdict, False)
    blocked = guide_blocks(facts, mode, guided_recently)
    reasons = (f"near_miss:{verdict.rule}", *blocked)
    if blocked or facts.mail.sender is None:
        return NearMissDecision(verdict, True, None, reasons)
    guide = SendReply(TEMPLATE_GUIDE, facts.mail.sender, about=_about(facts))
    return NearMissDecision(verdict, True, guide, reasons)


GuideBlock = tuple[str, bool]


def guide_blocks(facts: Facts, mode: str, guided_recently: bool) -> tuple[str, ...]:
    """Every reason not to send the guide, in table order (empty: send it)."""
    rows: tuple[GuideBlock, ...] = (
        ("guide_off", mode != "guide"),
        ("no_sender", facts.mail.sender is None),
        ("automated", bool(automated_reasons(facts))),
        ("unauthenticated_sender", not facts.sender_auth.authenticated),
        ("spam_flagged", facts.mail.spam_flagged),
        ("sender_problem", bool(facts.mail.from_problems)),
        ("minor_sender", _minor_only(facts)),
        ("guided_recently", guided_recently),
    )
    return tuple(code for code, applies in rows if applies)


def _minor_only(facts: Facts) -> bool:
    """A minor's own address: the minors' procedure applies, not the guide."""
    people = facts.people_on_file
    return bool(people) and all(p.is_minor_on(facts.today) for p in people)


def _about(facts: Facts) -> str | None:
    people = facts.people_on_file
    return people[0].username if len(people) == 1 else None
