"""The words staff read: every code that can reach a console page has an Italian label
(the codes are gathered from the tables, enums and calls in the code, not copied here),
times are Europe/Rome in Italian, plurals agree."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal, get_args, get_origin, get_type_hints
from zoneinfo import ZoneInfo

import pytest

import credmail
from credmail import bootstrap
from credmail.adapters.db.repositories.review import TRUNCATED
from credmail.config import LinksSettings
from credmail.core import campaign, limits, recipients
from credmail.core.decide import REVIEW_RULES, UNDECIDED
from credmail.core.values import RequestKind, Role
from credmail.service import bounces
from credmail.service import presentation as words
from credmail.service.desks.status import SIGN_IN_STATES
from credmail.service.desks.tasks import TASK_STATUSES
from credmail.service.handle_request import PROCESSING_ERROR, QUARANTINE_REASONS
from credmail.service.outbox.delivery import DELIVERY_FAILED
from credmail.service.ports import OutboxStatus, ReviewStatus
from credmail.service.review import PEC_HEADERS, SHOWN_HEADERS, STAFF_ROLES, Actor

SRC = Path(credmail.__file__).parent
ROME = ZoneInfo("Europe/Rome")


def review_reasons() -> set[str]:
    """Every reason a review item can be held for: the decision's rules and the other
    places that hold a message (limits, quarantine, delivery, bounces, a cut copy)."""
    return {
        *(code for code, _ in REVIEW_RULES),
        UNDECIDED,
        *limits.HOLD_REASONS,
        *QUARANTINE_REASONS.values(),
        PROCESSING_ERROR,
        DELIVERY_FAILED,
        bounces.REASON,
        bounces.CAMPAIGN_REASON,
        TRUNCATED,
    }


def calls(name: str) -> Iterator[ast.Call]:
    """Every call of a function or method called `name` in the package's source."""
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if called == name:
                    yield node


def literal(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def audit_actions() -> set[str]:
    """The action of every audit entry the code writes: `audit_entry(actor, now, ACTION,
    …)`, `AuditDesk.record(actor, ACTION, …)`, and the review desk's `review.<decision>`."""
    found = {literal(c.args[2]) for c in calls("audit_entry") if len(c.args) > 2}
    found |= {literal(c.args[1]) for c in calls("record") if len(c.args) > 1}
    found |= {f"review.{status}" for status in ReviewStatus if status is not ReviewStatus.PENDING}
    return {code for code in found if code}


def literal_values(cls: type, field: str) -> tuple[str, ...]:
    hint = get_type_hints(cls)[field]
    assert get_origin(hint) is Literal, hint
    return get_args(hint)


def prefixed(prefix: str, *modules: object) -> set[str]:
    return {v for m in modules for k, v in vars(m).items() if k.startswith(prefix)}


LANGUAGES = {p.parent.name for p in (SRC / "templates" / "i18n").glob("*/language.toml")}
TEMPLATE_FILES = {p.name.removesuffix(".txt.j2") for p in (SRC / "templates").glob("*.txt.j2")}

FAMILIES: list[tuple[str, set[str], dict[str, str]]] = [
    ("review reasons", review_reasons(), words.REASON_LABELS),
    ("request kinds", {str(k) for k in RequestKind}, words.KIND_LABELS),
    ("links", {str(k) for k in RequestKind if k is not RequestKind.UNKNOWN}, words.LINK_LABELS),
    ("roles", {str(r) for r in Role}, words.ROLE_LABELS),
    ("staff roles", set(STAFF_ROLES), words.STAFF_ROLE_LABELS),
    ("decisions", {str(s) for s in ReviewStatus}, words.DECISION_LABELS),
    ("reply templates", set(bootstrap.TEMPLATES) | TEMPLATE_FILES, words.TEMPLATE_LABELS),
    ("outbox states", {str(s) for s in OutboxStatus}, words.OUTBOX_STATUS_LABELS),
    ("task states", set(TASK_STATUSES), words.TASK_STATUS_LABELS),
    ("audit actions", audit_actions(), words.ACTION_LABELS),
    ("audit sources", set(literal_values(Actor, "source")), words.SOURCE_LABELS),
    ("purposes", prefixed("PURPOSE_", recipients, campaign), words.PURPOSE_LABELS),
    ("backends", set(literal_values(LinksSettings, "backend")), words.BACKEND_LABELS),
    ("sign-in states", set(SIGN_IN_STATES), words.SIGN_IN_LABELS),
    ("mail headers", {*SHOWN_HEADERS, *PEC_HEADERS}, words.HEADER_LABELS),
    ("languages", LANGUAGES | {"it"}, words.LANGUAGE_LABELS),
]


@pytest.mark.parametrize(("family", "codes", "labels"), FAMILIES, ids=[f[0] for f in FAMILIES])
def test_every_code_that_reaches_a_page_has_an_italian_label(
    family: str, codes: set[str], labels: dict[str, str]
) -> None:
    assert codes, family  # the enumeration found something
    assert sorted(codes - labels.keys()) == [], f"{family} without an Italian label"
    for code in codes:
        assert labels[code].strip(), (family, code)
        assert "_" not in labels[code], (family, code, labels[code])


def test_the_enumeration_finds_the_codes_it_must() -> None:
    """The scans are not vacuous: known codes of each kind are among what they found."""
    assert {"acknowledgement_limited", "raw_truncated", "delivery_failed"} <= review_reasons()
    assert {"task.done", "sign_in.failed", "review.approved", "staff.totp"} <= audit_actions()
    assert {"task_done", "campaign_new_student"} <= TEMPLATE_FILES
    assert {"adult_reset", "student_first_access"} <= prefixed("PURPOSE_", recipients, campaign)
    assert "worklist" in literal_values(LinksSettings, "backend")


def test_times_are_italian_in_rome() -> None:
    moment = datetime(2026, 12, 7, 17, 48, 21, tzinfo=UTC)
    assert words.italian_time(moment, ROME) == "7 dicembre 2026 alle 18:48"
    summer = datetime(2026, 8, 1, 6, 5, tzinfo=UTC)
    assert words.italian_time(summer, ROME) == "1 agosto 2026 alle 08:05"  # CEST
    assert words.italian_time_on(moment, ROME) == "il 7 dicembre 2026 alle 18:48"
    assert words.italian_time_on(summer, ROME) == "l'1 agosto 2026 alle 08:05"
    eighth = datetime(2026, 12, 8, 9, 0, tzinfo=ROME)
    assert words.italian_time_on(eighth, ROME, "a") == "all'8 dicembre 2026 alle 09:00"
    assert words.italian_date(date(2012, 5, 4)) == "4 maggio 2012"
    assert words.italian_time(None, ROME) == ""


def test_a_mails_date_header_is_said_in_italian() -> None:
    header = "Mon, 07 Dec 2026 17:48:21 +0000"
    assert words.mail_date(header, ROME) == "7 dicembre 2026 alle 18:48"
    assert words.header_value("Date", header, ROME) == "7 dicembre 2026 alle 18:48"
    assert words.mail_date("Mon, 07 Dec 2026 17:48:21 -0000", ROME).endswith("alle 18:48")
    assert words.mail_date("ieri sera", ROME) == "ieri sera"  # unreadable: as written
    assert words.header_value("Subject", header, ROME) == header


def test_plurals_agree_and_sentences_start_with_a_capital() -> None:
    assert words.plural(1, "messaggio", "messaggi") == "1 messaggio"
    assert words.plural(0, "messaggio", "messaggi") == "0 messaggi"
    assert words.plural(2, "richiesta", "richieste") == "2 richieste"
    assert words.sentence("nessuna attività con numero 9") == "Nessuna attività con numero 9."
    assert words.sentence("Fatto!") == "Fatto!"
    assert words.capital("richiesta approvata") == "Richiesta approvata"


def test_stored_codes_are_worded_when_shown() -> None:
    assert words.decider_label("olga (web)") == "olga (console)"
    assert words.decider_label("root (cli)") == "root (terminale)"
    assert words.decider_label("qualcuno") == "qualcuno"
    old = "link_student per S2345679C; nota: review_rejected"
    said = words.detail_label(old)
    assert "link_student" not in said and "review_rejected" not in said
    assert said.startswith("collegamento per le credenziali di uno studente minorenne per S")
    assert words.language_label("ro") == "rumeno (ro)"
    assert words.language_label(None) == "italiano (lingua predefinita)"
