"""Who reads a mail, and in which language: the `language` the secretariat set on the person
the mail goes to; for a guardian's mail about a minor, the guardian's."""

from __future__ import annotations

from datetime import UTC, date, datetime
from email import message_from_bytes, policy
from zoneinfo import ZoneInfo

from credmail.core.values import Person, Role, SendLink, SendReply
from credmail.service.links import TokenLinkIssuer
from credmail.service.outbox.queue import Mailer, languages_at
from credmail.service.reply_templates import ReplyComposer
from tests.fakes import FakeUnitOfWorkFactory

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def people(uow: FakeUnitOfWorkFactory) -> None:
    add = uow.store.add_person
    add(Person("S1", Role.STUDENT, "Ion", "Popa", date(2013, 1, 1), ("ion@example.org",), (), "ar"))
    add(Person("G1", Role.GUARDIAN, "Ana", "Popa", None, ("popa@example.org",), ("S1",), "ro"))
    add(Person("G2", Role.GUARDIAN, "Karim", "Popa", None, ("popa@example.org",), ("S1",), "ar"))
    add(Person("G3", Role.GUARDIAN, "Li", "Wang", None, ("wang@example.org",), ("S1",), None))
    add(Person("T1", Role.TEACHER, "Olena", "Koval", None, ("Olena@Example.org",), (), "uk"))
    add(Person("T2", Role.TEACHER, "Anna", "Riva", None, ("riva@example.org",), (), "it"))


def languages(action: SendLink | SendReply, about: str | None = None) -> tuple[str, ...]:
    uow = FakeUnitOfWorkFactory()
    people(uow)
    with uow() as u:
        return languages_at(u, action.to, u.directory.get(about) if about else None)


def test_an_adult_gets_their_own_language() -> None:
    assert languages(SendLink("T1", "adult_reset", "olena@example.org", "link_adult"), "T1") == (
        "uk",
    )


def test_a_guardian_gets_the_guardians_language_not_the_students() -> None:
    link = SendLink("S1", "student_reset", "wang@example.org", "link_student")
    assert languages(link, "S1") == ()  # Li Wang has none set: Italian only
    link = SendLink("S1", "student_reset", "popa@example.org", "link_student")
    assert languages(link, "S1") == ("ro", "ar")  # both guardians on the shared address


def test_italian_set_explicitly_and_no_one_on_file_add_nothing() -> None:
    assert languages(SendLink("T2", "adult_reset", "riva@example.org", "link_adult"), "T2") == ()
    assert languages(SendReply("review_rejected", "stranger@example.org")) == ()
    assert languages(SendReply("review_rejected", "not an address")) == ()


def test_replies_without_a_subject_person_use_everyone_at_the_address() -> None:
    assert languages(SendReply("rate_limited", "Olena@example.org")) == ("uk",)
    assert languages(SendReply("minor_procedure", "ion@example.org", about="S1"), "S1") == ("ar",)


def test_the_mailer_queues_one_mail_italian_then_the_guardians_language() -> None:
    uow = FakeUnitOfWorkFactory()
    people(uow)
    composer = ReplyComposer(
        "segreteria@example.org", "Segreteria", {"school_name": "S", "signature": "", "contact": ""}
    )
    mailer = Mailer(TokenLinkIssuer("https://r.example.org", 60), composer, ZoneInfo("Europe/Rome"))
    with uow() as u:
        mailer.queue(
            u, SendLink("S1", "student_reset", "popa@example.org", "link_student"), None, NOW
        )
        (entry,) = u.store.outbox.values()
        assert entry.raw is not None
        raw = mailer.finalize(u, entry, NOW)
    assert raw is not None
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg["Content-Language"] == "it, ro, ar"
    text = str(msg.get_content())
    assert text.index("(it) ===") < text.index("(ro) ===") < text.index("(ar) ===")
    assert "scade il 28/11/2026 alle 11:00" in text
    assert "expiră la 28/11/2026 11:00." in text
    assert text.count("https://r.example.org/reset/") == 3


def queued_text(action: SendLink | SendReply, context: dict[str, object] | None = None) -> str:
    uow = FakeUnitOfWorkFactory()
    people(uow)
    common = {"school_name": "S", "signature": "", "contact": ""}
    composer = ReplyComposer("segreteria@example.org", "Segreteria", common)
    mailer = Mailer(TokenLinkIssuer("https://r.example.org", 60), composer, ZoneInfo("Europe/Rome"))
    with uow() as u:
        mailer.queue(u, action, None, NOW, context=context)
        (entry,) = u.store.outbox.values()
        assert entry.raw is not None
        msg = message_from_bytes(entry.raw, policy=policy.default)
    return str(msg.get_body().get_content())  # type: ignore[union-attr]


def test_a_guardian_alone_at_the_address_is_greeted_by_name_never_by_the_childs() -> None:
    text = queued_text(SendLink("S1", "student_reset", "wang@example.org", "link_student"))
    assert text.startswith("Gentile Li Wang,")
    assert "Ion Popa" in text  # the student is named in the text, not greeted
    shared = queued_text(SendLink("S1", "student_reset", "popa@example.org", "link_student"))
    assert "\nGentile genitore/tutore,\n" in shared  # two guardians read it: no one name


def test_only_a_mail_no_person_decided_says_it_was_sent_automatically() -> None:
    link = SendLink("T1", "adult_reset", "olena@example.org", "link_adult")
    assert "inviato automaticamente" in queued_text(link)
    decided = queued_text(link, {"automatic": False})
    assert "inviato automaticamente" not in decided
    assert "la segreteria ha esaminato la Sua richiesta" in decided
