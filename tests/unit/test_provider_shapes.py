"""Requests as real providers deliver them: gateway tags, spam flags, PEC envelopes and
receipts (fixtures built in tests/support/provider_mail.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from credmail.core.classify import SubjectRules, classify_subject, default_rules
from credmail.core.decide import decide
from credmail.core.parse import parse_message
from credmail.core.values import Facts, HoldForReview, Outcome, RequestKind, SendLink
from tests.support import provider_mail as pm
from tests.unit.test_decide import facts_for

RULES = default_rules()


def facts(raw: bytes) -> Facts:
    """As the pipeline gathers them: a PEC envelope is classified by the original subject."""
    found = facts_for(raw)
    return replace(found, classification=classify_subject(found.mail.classified_subject, RULES))


# -- 1. gateway subject tags and spam markers ---------------------------------------


@pytest.mark.parametrize(
    ("subject", "tags"),
    [
        ("[EXTERNAL] Richiesta credenziali", ("[external]",)),
        ("[ESTERNO] Richiesta credenziali", ("[esterno]",)),
        ("[EXT] Richiesta credenziali", ("[ext]",)),
        ("[External]Richiesta credenziali", ("[external]",)),
        ("Richiesta credenziali [EXTERNAL]", ("[external]",)),
        ("[EXT] [EXTERNAL] Richiesta credenziali", ("[ext]", "[external]")),
        ("［ＥＸＴＥＲＮＡＬ］ richiesta credenziali", ("[external]",)),  # NFKC like phrases
    ],
)
def test_gateway_tags_are_stripped_and_recorded(subject: str, tags: tuple[str, ...]) -> None:
    result = classify_subject(subject, RULES)
    assert (result.is_request, result.kind, result.reply_prefix) == (True, RequestKind.ADULT, False)
    assert result.ignored_tags == tags
    assert not result.spam_tag


def test_tagged_reply_is_still_a_reply() -> None:
    result = classify_subject("[EXTERNAL] Re: [EXT] richiesta credenziali studente", RULES)
    assert (result.kind, result.reply_prefix) == (RequestKind.STUDENT, True)
    assert result.ignored_tags == ("[external]", "[ext]")


def test_a_tag_glued_to_a_word_is_not_stripped() -> None:
    rules = SubjectRules.build(
        ["richiesta credenziali studente"], ["richiesta credenziali"], [], ["ext"]
    )
    assert not classify_subject("extrichiesta credenziali", rules).is_request
    assert classify_subject("ext richiesta credenziali", rules).ignored_tags == ("ext",)


def test_configured_tags_replace_the_defaults() -> None:
    rules = SubjectRules.build(
        ["x"], ["richiesta credenziali"], [], ["{Posta esterna}"], ["{spam?}"]
    )
    assert classify_subject("{POSTA ESTERNA} richiesta credenziali", rules).is_request
    assert not classify_subject("[EXTERNAL] richiesta credenziali", rules).is_request
    assert classify_subject("{SPAM?} richiesta credenziali", rules).spam_tag


def test_a_tagged_request_is_answered_like_an_untagged_one() -> None:
    tagged = decide(facts(pm.plain("[EXTERNAL] Richiesta credenziali")))
    untagged = decide(facts(pm.plain("Richiesta credenziali")))
    assert tagged == untagged
    assert tagged.outcome is Outcome.ANSWERED
    assert isinstance(tagged.actions[0], SendLink)


@pytest.mark.parametrize(
    ("subject", "extra"),
    [
        ("***SPAM*** Richiesta credenziali", ()),
        ("[SPAM] Richiesta credenziali", ()),
        ("[POSSIBILE SPAM] [EXTERNAL] Richiesta credenziali", ()),
        ("Richiesta credenziali", (("X-Spam-Flag", "YES"),)),
        ("Richiesta credenziali", (("X-Spam-Status", "Yes, score=7.1 required=5.0"),)),
    ],
)
def test_spam_markers_hold_for_review_and_nothing_is_sent(
    subject: str, extra: tuple[tuple[str, str], ...]
) -> None:
    decision = decide(facts(pm.plain(subject, extra=extra)))
    assert decision.outcome is Outcome.REVIEW
    assert decision.reasons == ("spam_flagged",)
    assert decision.actions == (HoldForReview(("spam_flagged",)),)


@pytest.mark.parametrize(
    "extra", [(("X-Spam-Flag", "NO"),), (("X-Spam-Status", "No, score=0.1 required=5.0"),)]
)
def test_a_clean_spam_verdict_changes_nothing(extra: tuple[tuple[str, str], ...]) -> None:
    assert decide(facts(pm.plain(extra=extra))).outcome is Outcome.ANSWERED


# -- 2. PEC envelopes and receipts ----------------------------------------------------


def test_pec_envelope_is_parsed_to_its_original() -> None:
    mail = parse_message(pm.pec_envelope(inner_subject="Richiesta credenziali studente"))
    assert mail.sender == "posta-certificata@pec.aruba.it"
    assert mail.pec is not None
    assert mail.pec.sender == "mario.rossi@pec.example.org"
    assert mail.pec.subject == "Richiesta credenziali studente"
    assert "padre di Luca" in mail.pec.text
    assert mail.classified_subject == "Richiesta credenziali studente"


def test_pec_envelope_is_classified_by_the_inner_subject_and_held() -> None:
    decision = decide(facts(pm.pec_envelope(inner_subject="Richiesta credenziali studente")))
    assert decision.outcome is Outcome.REVIEW
    assert "pec_envelope" in decision.reasons
    assert all(isinstance(action, HoldForReview) for action in decision.actions)


def test_pec_envelope_from_an_address_on_file_is_still_never_answered() -> None:
    """Even with the original's sender on file and authenticated, nothing is sent: not to
    Reply-To, not to the inner sender."""
    raw = pm.pec_envelope(inner_sender="mario.rossi@example.org")
    found = facts(raw)
    on_file = facts(pm.plain()).people_on_file
    decision = decide(replace(found, people_on_file=on_file))
    assert decision.outcome is Outcome.REVIEW
    assert "pec_envelope" in decision.reasons  # and the "Per conto di: <address>" name
    assert decision.actions == (HoldForReview(decision.reasons),)


def test_pec_subject_prefix_alone_marks_an_envelope() -> None:
    """The cheap header pass sees only the outer subject: it must look like a request."""
    result = classify_subject("POSTA CERTIFICATA: Richiesta credenziali", RULES)
    assert (result.is_request, result.pec) == (True, "envelope")


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        ("ACCETTAZIONE", "accettazione"),
        ("CONSEGNA", "avvenuta-consegna"),
        ("AVVENUTA CONSEGNA", "avvenuta-consegna"),
        ("AVVISO DI NON ACCETTAZIONE", "non-accettazione"),
        ("ANOMALIA MESSAGGIO", "errore-consegna"),
    ],
)
def test_pec_receipts_are_automated_mail(prefix: str, kind: str) -> None:
    decision = decide(facts(pm.pec_receipt(prefix, kind)))
    assert decision.outcome is Outcome.AUTOMATED
    assert "pec_receipt" in decision.reasons
    assert decision.actions == ()


def test_pec_receipt_recognized_by_subject_alone() -> None:
    raw = pm.plain("AVVENUTA CONSEGNA: Richiesta credenziali")
    decision = decide(facts(raw))
    assert (decision.outcome, decision.reasons) == (Outcome.AUTOMATED, ("pec_receipt",))
