"""Recognize automated mail (RFC 3834 and peers' lessons) with an ordered table of rules."""

from __future__ import annotations

from collections.abc import Callable

from credmail.core.values import Facts

_ROBOT_LOCAL_PARTS = ("mailer-daemon", "postmaster", "noreply", "no-reply", "donotreply")


def _header(facts: Facts, name: str) -> list[str]:
    return [value.lower() for key, value in facts.mail.automation_headers if key == name]


def _auto_submitted(facts: Facts) -> bool:
    return any(value.split(";")[0].strip() != "no" for value in _header(facts, "auto-submitted"))


def _precedence(facts: Facts) -> bool:
    return any(v in {"bulk", "list", "junk", "auto_reply"} for v in _header(facts, "precedence"))


def _list_header(facts: Facts) -> bool:
    return any(key.startswith("list-") for key, _ in facts.mail.automation_headers)


def _autoreply_header(facts: Facts) -> bool:
    return bool(_header(facts, "x-autoreply") or _header(facts, "x-autorespond"))


def _null_sender(facts: Facts) -> bool:
    """The SMTP reverse path was empty (the delivering server records it as Return-Path)."""
    return any(value.strip() == "<>" for value in _header(facts, "return-path"))


def _robot_sender(facts: Facts) -> bool:
    local = (facts.mail.sender or "").partition("@")[0]
    return local in _ROBOT_LOCAL_PARTS or local.startswith("owner-") or local.endswith("-request")


def _pec_receipt(facts: Facts) -> bool:
    """A PEC provider's receipt (accettazione, consegna, ...): by its field or its subject."""
    return bool(_header(facts, "x-ricevuta")) or facts.classification.pec == "receipt"


AutomatedRule = tuple[str, Callable[[Facts], bool]]

AUTOMATED_RULES: tuple[AutomatedRule, ...] = (
    ("auto_submitted", _auto_submitted),
    ("precedence", _precedence),
    ("list_header", _list_header),
    ("autoreply_header", _autoreply_header),
    ("delivery_report", lambda facts: facts.mail.is_delivery_report),
    ("pec_receipt", _pec_receipt),
    ("null_sender", _null_sender),
    ("robot_sender", _robot_sender),
    ("own_address", lambda facts: facts.mail.sender in facts.own_addresses),
    ("reply_to_our_mail", lambda facts: facts.references_our_mail),
)


def automated_reasons(facts: Facts) -> tuple[str, ...]:
    """Every automated-mail rule that applies, in table order."""
    return tuple(code for code, applies in AUTOMATED_RULES if applies(facts))
