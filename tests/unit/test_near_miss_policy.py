"""The near-miss decision: flagged in `flag` and `guide`, answered only in `guide` and
only past every guard, each refusal named; `ignore` does nothing."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from credmail.core.near_miss_policy import TEMPLATE_GUIDE, decide_near_miss
from credmail.core.values import Person, Role, SenderAuth
from credmail.near_miss_rules import load_near_miss_rules
from tests.support.near_miss_corpus import SCHOOL, Mail, facts_for

RULES = load_near_miss_rules(None)
ASKING = Mail("t-1", "it", True, "family", "Password dimenticata registro", "Non entro più.")


def test_guide_replies_to_the_sender_by_name_when_on_file() -> None:
    decision = decide_near_miss(facts_for(ASKING), RULES, "guide", guided_recently=False)
    assert decision.flag and decision.rule == "credentials_in_subject"
    assert decision.guide is not None and decision.guide.template == TEMPLATE_GUIDE
    assert decision.guide.to == "t-1@famiglie.example" and decision.guide.about == "g.family"
    assert decision.reasons == ("near_miss:credentials_in_subject",)


def test_flag_never_replies_and_ignore_does_nothing() -> None:
    flagged = decide_near_miss(facts_for(ASKING), RULES, "flag", guided_recently=False)
    assert flagged.flag and flagged.guide is None and "guide_off" in flagged.reasons
    ignored = decide_near_miss(facts_for(ASKING), RULES, "ignore", guided_recently=False)
    assert not ignored.flag and ignored.guide is None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"sender_auth": SenderAuth(False)}, "unauthenticated_sender"),
        ({"references_our_mail": True}, "automated"),
        (
            {"people_on_file": (Person("s", Role.STUDENT, "A", "B", date(2015, 1, 1)),)},
            "minor_sender",
        ),
    ],
)
def test_each_guard_is_named(change: dict[str, object], reason: str) -> None:
    facts = replace(facts_for(ASKING), **change)  # type: ignore[arg-type]
    decision = decide_near_miss(facts, RULES, "guide", guided_recently=False)
    assert decision.flag and decision.guide is None and reason in decision.reasons


def test_once_per_sender_and_never_to_lists_or_the_school() -> None:
    again = decide_near_miss(facts_for(ASKING), RULES, "guide", guided_recently=True)
    assert again.flag and again.guide is None and "guided_recently" in again.reasons
    listed = replace(ASKING, headers=(("List-Id", "<genitori.example>"),))
    bulk = decide_near_miss(facts_for(listed), RULES, "guide", guided_recently=False)
    assert not bulk.flag and bulk.rule == "automated_mail"
    own = replace(ASKING, sender="school")
    ours = decide_near_miss(facts_for(own), RULES, "guide", guided_recently=False)
    assert not ours.flag and ours.verdict.rule == "automated_mail"
    assert SCHOOL in facts_for(own).own_addresses
