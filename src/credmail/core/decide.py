"""The pure decision: frozen facts in, a Decision (outcome, reasons, actions) out.

Review reasons are an ordered table; every row is evaluated, so the reviewer sees all
the reasons that applied, and the message is held once at the end.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from credmail.core.automated import automated_reasons
from credmail.core.names import named_people
from credmail.core.recipients import link_kind, matching, recipients
from credmail.core.values import (
    Action,
    Decision,
    Facts,
    HoldForReview,
    MarkBounced,
    Outcome,
    Person,
    RequestKind,
    Role,
    SendLink,
    SendReply,
)

TEMPLATE_MINOR_PROCEDURE = "minor_procedure"
TEMPLATE_ACKNOWLEDGE = "acknowledge_unknown"
UNDECIDED = "undecided"  # held although no rule gave a reason


@dataclass(frozen=True)
class Resolution:
    """Who the request is about, as far as the facts tell."""

    candidates: tuple[Person, ...]
    chosen: Person | None
    guardians: tuple[Person, ...] = ()
    minor_only_sender: bool = False


def resolve(facts: Facts) -> Resolution:
    """Find the account a request is for: the adults on file, or a guardian's students."""
    if facts.classification.kind is RequestKind.STUDENT:
        return _resolve_student(facts)
    return _resolve_adult(facts)


def _resolve_adult(facts: Facts) -> Resolution:
    adults = tuple(p for p in facts.people_on_file if p.is_adult_on(facts.today))
    minor_only = bool(facts.people_on_file) and not adults
    return Resolution(adults, _pick(adults, facts, first_names=False), (), minor_only)


def _resolve_student(facts: Facts) -> Resolution:
    guardians = tuple(p for p in facts.people_on_file if p.role is Role.GUARDIAN)
    students = facts.linked_students if guardians else ()
    return Resolution(students, _pick(students, facts, first_names=True), guardians)


def _pick(candidates: tuple[Person, ...], facts: Facts, *, first_names: bool) -> Person | None:
    if len(candidates) == 1:
        return candidates[0]
    for body in (facts.mail.text, facts.mail.html_text):  # the plain part wins
        text = f"{facts.classification.rest}\n{body}"
        named = named_people(text, candidates, first_names=first_names)
        if named:
            return named[0] if len(named) == 1 else None
    return None


ReviewRule = tuple[str, Callable[[Facts, Resolution], bool]]


def _from_problem(code: str) -> Callable[[Facts, Resolution], bool]:
    return lambda facts, _: code in facts.mail.from_problems


def _auth_problem(code: str) -> Callable[[Facts, Resolution], bool]:
    return lambda facts, _: code in facts.sender_auth.problems


def _is(kind: RequestKind) -> Callable[[Facts], bool]:
    return lambda facts: facts.classification.kind is kind


_adult, _student = _is(RequestKind.ADULT), _is(RequestKind.STUDENT)


def _chosen_student_is_adult(facts: Facts, res: Resolution) -> bool:
    return _student(facts) and res.chosen is not None and res.chosen.is_adult_on(facts.today)


def _chosen_student_left(_: Facts, res: Resolution) -> bool:
    """The account asked about is a pupil the register says has left (inactive)."""
    return res.chosen is not None and res.chosen.role is Role.STUDENT and not res.chosen.active


REVIEW_RULES: tuple[ReviewRule, ...] = (
    ("missing_from", _from_problem("missing_from")),
    ("repeated_from", _from_problem("repeated_from")),
    ("multi_address_from", _from_problem("multi_address_from")),
    ("malformed_from", _from_problem("malformed_from")),
    ("non_ascii_local_part", _from_problem("non_ascii_local_part")),
    ("header_smuggling", _from_problem("header_smuggling")),
    ("header_too_long", _from_problem("header_too_long")),
    ("mime_too_complex", _from_problem("mime_too_complex")),
    ("display_name_too_long", _from_problem("display_name_too_long")),
    ("display_name_address", _from_problem("display_name_address")),
    ("display_name_control", _from_problem("display_name_control")),
    ("display_name_mixed_script", _from_problem("display_name_mixed_script")),
    ("display_name_encoded", _from_problem("display_name_encoded")),
    ("confusable_domain", _from_problem("confusable_domain")),
    ("auth_results_conflict", _auth_problem("auth_results_conflict")),
    ("auth_results_unparseable", _auth_problem("auth_results_unparseable")),
    ("auth_results_unattributed", _auth_problem("auth_results_unattributed")),
    ("unauthenticated_sender", lambda facts, _: not facts.sender_auth.authenticated),
    ("spam_flagged", lambda f, _: f.classification.spam_tag or f.mail.spam_flagged),
    ("pec_envelope", lambda f, _: f.classification.pec == "envelope" or f.mail.pec is not None),
    ("malformed_subject", lambda facts, _: bool(facts.mail.subject_problems)),
    ("reply_prefix", lambda facts, _: facts.classification.reply_prefix),
    ("unknown_sender", lambda f, _: f.mail.sender is not None and not f.people_on_file),
    ("ambiguous_person", lambda f, r: _adult(f) and len(r.candidates) > 1 and not r.chosen),
    ("not_guardian", lambda f, r: _student(f) and bool(f.people_on_file) and not r.guardians),
    ("no_linked_student", lambda f, r: bool(r.guardians) and not r.candidates),
    ("ambiguous_student", lambda f, r: _student(f) and len(r.candidates) > 1 and not r.chosen),
    ("adult_student", _chosen_student_is_adult),
    ("not_enrolled", _chosen_student_left),
)


def review_reasons(facts: Facts, resolution: Resolution) -> tuple[str, ...]:
    """Every review rule that applies, in table order."""
    return tuple(code for code, applies in REVIEW_RULES if applies(facts, resolution))


def decide(facts: Facts) -> Decision:
    """Decide what to do with one message. Pure: no I/O, no clock, no database."""
    if not facts.classification.is_request and not facts.bounces_our_reply:
        return Decision(Outcome.IGNORED)
    automated = automated_reasons(facts)
    if automated:
        bounced = (MarkBounced(facts.mail.bounced_ids),) if facts.bounces_our_reply else ()
        return Decision(Outcome.AUTOMATED, automated, bounced)
    resolution = resolve(facts)
    reasons = review_reasons(facts, resolution)
    action = None if reasons else _answer(facts, resolution)
    if action is None:
        reasons = reasons or (UNDECIDED,)
        return Decision(
            Outcome.REVIEW, reasons, (HoldForReview(reasons), *_acknowledge(facts, reasons))
        )
    return Decision(Outcome.ANSWERED, (), (action,))


def _acknowledge(facts: Facts, reasons: tuple[str, ...]) -> tuple[Action, ...]:
    """A neutral 'received' to an authenticated sender who is simply not on file."""
    wanted = facts.options.acknowledge_unknown and facts.sender_auth.authenticated
    if not wanted or reasons != ("unknown_sender",) or facts.mail.sender is None:
        return ()
    return (SendReply(TEMPLATE_ACKNOWLEDGE, facts.mail.sender),)


def _answer(facts: Facts, res: Resolution) -> Action | None:
    if facts.mail.sender is None:
        return None
    if facts.classification.kind is RequestKind.ADULT and res.minor_only_sender:
        return _minor_procedure(facts)
    if res.chosen is None:
        return None
    to = _on_file(facts, recipients(res.chosen, res.guardians, facts.today))
    if to is None:
        return None
    purpose, template = link_kind(res.chosen, facts.today)
    return SendLink(res.chosen.username, purpose, to, template)


def _minor_procedure(facts: Facts) -> Action | None:
    """The minors' procedure, to the minor's own address, addressed by name when known."""
    own = tuple(a for p in facts.people_on_file for a in p.emails)
    to = _on_file(facts, own)
    if to is None:
        return None
    about = facts.people_on_file[0].username if len(facts.people_on_file) == 1 else None
    return SendReply(TEMPLATE_MINOR_PROCEDURE, to, about=about)


def _on_file(facts: Facts, addresses: tuple[str, ...]) -> str | None:
    """The address exactly as the directory records it whose exact key is the sender's.

    Only `addresses` count (the recipients of mail about the account); None when the
    sender is not one of them, or when two of them have the sender's exact key.
    """
    written = facts.mail.sender_as_written or facts.mail.sender or ""
    found = matching(addresses, written)
    return found[0] if len(set(found)) == 1 else None
