"""Requests as real providers deliver them: gateway tags, spam flags, PEC envelopes and
receipts, HTML and quoted bodies, bounces of our replies (fixtures built in
tests/support/provider_mail.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from credmail.core.bounces import looks_like_report
from credmail.core.classify import SubjectRules, classify_subject, default_rules
from credmail.core.decide import decide
from credmail.core.parse import header_block, parse_message
from credmail.core.values import (
    Facts,
    HoldForReview,
    MarkBounced,
    Outcome,
    RequestKind,
    SendLink,
)
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


# -- 4. bodies: HTML only, multipart/alternative, quoted threads and signatures ---------


def chosen(raw: bytes) -> str | None:
    """The student a guardian's request was answered for, or None when held."""
    decision = decide(facts(raw))
    if decision.outcome is not Outcome.ANSWERED:
        assert decision.reasons == ("ambiguous_student",)
        return None
    action = decision.actions[0]
    assert isinstance(action, SendLink)
    return action.username


def test_html_only_names_are_read_from_the_text() -> None:
    raw = pm.html_only("<p>Buongiorno,</p><p>per <b>Nicol&ograve;</b> Bianchi grazie</p>")
    assert chosen(raw) == "S3"


def test_html_is_never_rendered_only_its_text_counts() -> None:
    """A name inside a tag's attribute or a comment-like tag is not text."""
    raw = pm.html_only('<p title="Giulia">Buongiorno</p><img alt="x" src="nicolo.png">')
    assert chosen(raw) is None


def test_alternative_the_text_part_wins() -> None:
    raw = pm.alternative("Le credenziali per Giulia.\n", "<p>Le credenziali per Nicolò.</p>")
    assert chosen(raw) == "S2"


def test_alternative_a_name_only_in_the_html_counts() -> None:
    raw = pm.alternative("Buongiorno.\n", "<p>Le credenziali per <i>Nicolò</i>.</p>")
    mail = parse_message(raw)
    assert "Nicolò" in mail.html_text and "Nicolò" not in mail.text
    assert chosen(raw) == "S3"


def test_html_quote_blocks_are_excluded() -> None:
    gmail = (
        '<div dir="ltr">Il link per Nicolò, grazie</div><br><div class="gmail_quote">'
        '<div dir="ltr" class="gmail_attr">Il giorno lun 1 set 2026 Segreteria ha scritto:'
        '<br></div><blockquote class="gmail_quote">Per Giulia fatto.</blockquote></div>'
    )
    assert chosen(pm.html_only(gmail)) == "S3"
    outlook = (
        '<div>Le credenziali per favore</div><div id="appendonsend"></div><hr>'
        '<div id="divRplyFwdMsg"><b>Da:</b> Segreteria<br><b>Inviato:</b> lunedì</div>'
        "<div>Per Giulia il link è stato inviato.</div>"
    )
    assert chosen(pm.html_only(outlook)) is None
    apple = '<div>Serve il link</div><blockquote type="cite">Giulia</blockquote>'
    assert chosen(pm.html_only(apple)) is None


@pytest.mark.parametrize("name", sorted(pm.QUOTED_THREADS))
def test_quoted_text_and_signatures_never_name_a_child(name: str) -> None:
    body, expected = pm.QUOTED_THREADS[name]
    assert chosen(pm.family(body)) == expected


def test_own_text_keeps_ordinary_lines() -> None:
    from credmail.core.quoted import own_text

    text = (
        "Il mio figlio si chiama Nicolò.\n"
        "Inviato da mia moglie ieri il modulo per Nicolò Bianchi, classe 2B.\n"
    )
    assert own_text(text) == text.rstrip("\n")


@pytest.mark.parametrize(
    "body",
    [
        "<div" + " class=x" * 30_000,
        "<br" + "a" * 150_000,
        "<" * 150_000,
        ("Il giorno " + "x" * 900 + "\n") * 200,
        ("Da: x\n" * 20_000),
    ],
)
def test_body_patterns_stay_linear(body: str) -> None:
    import time

    from credmail.core.parse import html_text
    from credmail.core.quoted import own_text

    start = time.process_time()
    own_text(html_text(body))
    own_text(body)
    assert time.process_time() - start < 1.0


# -- 5. bounces of our own replies ------------------------------------------------------

OUR_REPLY = "<r1.credmail@istitutostanga.edu.it>"
DSNS = {"postfix": pm.dsn_postfix, "exchange": pm.dsn_exchange, "gmail": pm.dsn_gmail}


@pytest.mark.parametrize("shape", sorted(DSNS))
def test_dsn_names_the_original_reply(shape: str) -> None:
    raw = DSNS[shape](OUR_REPLY)
    assert looks_like_report(header_block(raw))
    assert parse_message(raw).bounced_ids == (OUR_REPLY,)


@pytest.mark.parametrize("shape", sorted(DSNS))
def test_dsn_of_our_reply_is_automated_and_marks_the_reply(shape: str) -> None:
    found = replace(facts(DSNS[shape](OUR_REPLY)), bounces_our_reply=True)
    decision = decide(found)
    assert decision.outcome is Outcome.AUTOMATED
    assert "delivery_report" in decision.reasons
    assert decision.actions == (MarkBounced((OUR_REPLY,)),)


def test_dsn_of_someone_elses_mail_is_left_alone() -> None:
    decision = decide(facts(pm.dsn_postfix("<other@example.org>")))
    assert (decision.outcome, decision.actions) == (Outcome.IGNORED, ())


def test_delayed_notice_is_not_a_bounce() -> None:
    raw = pm.dsn_postfix(OUR_REPLY, action="delayed")
    assert parse_message(raw).bounced_ids == ()


def test_a_plain_message_quoting_our_id_is_not_a_bounce() -> None:
    raw = pm.plain("Undelivered Mail Returned to Sender", body=f"Message-ID: {OUR_REPLY}\n")
    assert not looks_like_report(header_block(raw))
    assert parse_message(raw).bounced_ids == ()
