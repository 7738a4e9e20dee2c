"""The review desk: who an approval may write to, who decides, what the reviewer sees.

Real Dovecot, aiosmtpd, SQLite and PostgreSQL; the CLI as the secretariat runs it.
"""

from __future__ import annotations

import getpass
import json
from datetime import date

import pytest

from credmail.entrypoints.daemon import run_once
from credmail.samples import directory_csv
from credmail.service.links import TokenLinkIssuer, check_token
from credmail.service.review import Actor, AddressNeeded, KindMismatch, ReviewError
from tests.integration.test_cli import Cli, cli, sample  # noqa: F401 - the cli fixture
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import body_text, make_app, server_settings

pytestmark = pytest.mark.integration

DESK = Actor("segreteria", "cli")


def recipients(smtp: SmtpServer) -> list[str]:
    return [rcpt for _from, rcpts, _raw in smtp.handler.messages for rcpt in rcpts]


def test_adult_students_link_goes_only_to_the_student(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """Issue 8.1: a guardian asked for S2005 (19, own address); the link is not hers."""
    app = make_app(server_settings(dovecot, smtp, db_url))
    dovecot.append(sample("guardian-of-adult-student"))
    run_once(app)
    (item,) = app.review.pending()
    assert item.reasons == ("adult_student",)
    with pytest.raises(KindMismatch, match="riceverebbe il collegamento per le credenziali pers"):
        app.review.approve(item.id, "S2005", DESK)
    with pytest.raises(ReviewError, match="non è un indirizzo registrato"):
        app.review.approve(item.id, "S2005", DESK, "elena.neri@example.org", kind="adult")
    approval = app.review.approve(item.id, "S2005", DESK, kind="adult")
    assert (approval.template, approval.to) == ("link_adult", "davide.neri@example.org")
    run_once(app)
    assert recipients(smtp) == ["davide.neri@example.org"]


def test_a_minors_link_never_goes_to_the_minor(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """Issue 8.1: a minor's own student request (not_guardian) approved for herself."""
    app = make_app(server_settings(dovecot, smtp, db_url))
    dovecot.append(request("sara.verdi@studenti.example.org", "Richiesta credenziali studente"))
    run_once(app)
    (item,) = app.review.pending()
    assert item.reasons == ("not_guardian",)
    with pytest.raises(ReviewError, match="non ha indirizzi registrati"):
        app.review.approve(item.id, "S2004", DESK)
    with pytest.raises(ReviewError, match="non è un indirizzo registrato"):
        app.review.approve(item.id, "S2004", DESK, "sara.verdi@studenti.example.org")
    run_once(app)
    assert recipients(smtp) == []
    assert [i.id for i in app.review.pending()] == [item.id]


def test_several_valid_addresses_need_to_even_when_one_is_the_sender(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """Issue 8.1: never default to the sender; with several addresses `--to` names one."""
    app = make_app(server_settings(dovecot, smtp, db_url), directory=False)
    paolo = b'"Paolo","Bianchi","","famiglia.bianchi@example.org",'
    csv = directory_csv(date.today())
    assert csv.count(paolo) == 1  # the row this test changes is there as written
    csv = csv.replace(
        paolo, b'"Paolo","Bianchi","","famiglia.bianchi@example.org;paolo@lavoro.example",'
    )
    _import(app, csv)
    dovecot.append(sample("shared-address-unnamed"))
    run_once(app)
    (item,) = app.review.pending()
    with pytest.raises(AddressNeeded, match=r"sceglierne uno$"):
        app.review.approve(item.id, "G1003", DESK)
    app.review.approve(item.id, "G1003", DESK, "PAOLO@lavoro.example")
    run_once(app)
    assert recipients(smtp) == ["paolo@lavoro.example"]


def test_a_token_bound_to_someone_elses_address_is_stale(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """links._still_bound follows the same rule: an adult's link to a guardian is dead."""
    app = make_app(server_settings(dovecot, smtp, db_url))
    issuer = TokenLinkIssuer("https://registro.example/", 60)
    now = app.clock()
    with app.uow() as uow:
        student, minor = uow.directory.get("S2005"), uow.directory.get("S2001")
        assert student is not None and minor is not None
        reserved = [
            issuer.issue(uow, student, "adult_reset", "elena.neri@example.org", now),
            issuer.issue(uow, minor, "student_reset", "mario.rossi@example.org", now),
        ]
        wrong, right = (issuer.mint(uow, str(link.selector), now) for link in reserved)
        assert wrong is not None and right is not None
        uow.commit()
    with app.uow() as uow:
        assert check_token(uow, wrong.url, now).state == "stale"
        assert check_token(uow, right.url, now).state == "valid"


def _import(app: object, csv: bytes) -> None:
    from credmail.adapters.db.directory_import import import_records
    from credmail.service.directory_csv import read_directory

    with app.uow() as uow:  # type: ignore[attr-defined]
        import_records(uow.session, read_directory(csv), prune=False)
        uow.commit()


def test_by_is_a_note_not_an_identity(
    cli: Cli,  # noqa: F811
    dovecot: Dovecot,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Issue 8.7: review.staff cannot be bypassed with --by."""
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(sample("unknown-sender"))
    cli("run", "--once")
    (item,) = json.loads(cli("review", "list", "--json"))
    monkeypatch.setenv("CREDMAIL_REVIEW__STAFF", '["rossi.segreteria"]')
    out = cli("review", "discard", str(item["id"]), "--by", "rossi.segreteria", expect=1)
    assert "non è tra il personale autorizzato" in out
    monkeypatch.setenv("CREDMAIL_REVIEW__STAFF", f'["{getpass.getuser()}"]')
    cli("review", "discard", str(item["id"]), "--by", "rossi.segreteria")
    shown = cli("review", "show", str(item["id"]))
    assert f"archiviata da {getpass.getuser()} (terminale)" in shown
    assert "indicato con --by: rossi.segreteria" in shown


HOSTILE = "\x1b[2J\x1b[1;1HApprovato dal dirigente\u202egnp.exe\x9b31m\x07 fine"


def test_escape_sequences_never_reach_the_terminal(
    cli: Cli,  # noqa: F811
    dovecot: Dovecot,
) -> None:
    """Issue 8.8: C0/C1 controls and bidi overrides are stripped from review output."""
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(
        request(
            f'"Mario{HOSTILE}" <mario.rossi@example.org>',
            "Richiesta credenziali \x9b2J\u202e",
            body=f"Buongiorno {HOSTILE}",
            dmarc="fail",
        )
    )
    cli("run", "--once")
    listed = cli("review", "list") + cli("review", "list", "--json")
    listed += cli("privacy", "show", "mario.rossi@example.org")  # holds the subject
    (item,) = json.loads(cli("review", "list", "--json"))
    shown = cli("review", "show", str(item["id"]))
    for out in (listed, shown):
        for bad in ("\x1b", "\x9b", "\x07", "\u202e"):
            assert bad not in out
    assert "Approvato dal dirigente" in shown  # the text is shown, defused
    assert "fine" in shown


def test_show_lists_children_and_approve_refuses_the_wrong_kind(
    cli: Cli,  # noqa: F811
    dovecot: Dovecot,
    smtp: SmtpServer,
) -> None:
    """Issue 10.13: candidates with role, children and code; kind checked; revocations told."""
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(sample("student-one-child"))  # answered: a link for S2001 to mario
    dovecot.append(sample("student-unnamed-child"))
    cli("run", "--once")
    (item,) = json.loads(cli("review", "list", "--json"))
    shown = cli("review", "show", str(item["id"]))
    assert "Tipo: credenziali di uno studente" in shown
    assert "G1002: Anna Bianchi (genitore/tutore)" in shown
    assert "figlio/a: S2002: Giulia Bianchi (studente, 12 anni)" in shown
    assert "figlio/a: S2003: Marco Bianchi (studente, 16 anni)" in shown
    refused = cli("review", "approve", str(item["id"]), "--person", "G1002", expect=1)
    assert "--kind adult" in refused
    out = cli("review", "approve", str(item["id"]), "--person", "S2002")
    assert "approvata per S2002: il collegamento per le credenziali di uno studente" in out
    assert "Revocato" not in out

    dovecot.append(sample("unknown-sender"))
    cli("run", "--once")
    (other,) = json.loads(cli("review", "list", "--json"))
    refused = cli("review", "approve", str(other["id"]), "--person", "S2001", expect=1)
    assert "--kind student" in refused
    refused = cli(
        "review", "approve", str(other["id"]), "--person", "S2001", "--kind", "student", expect=1
    )
    assert "non è tra le persone collegate al mittente" in refused and "--conferma" in refused
    confirmed = ("--kind", "student", "--conferma")  # S2001 is not linked to this sender
    out = cli("review", "approve", str(other["id"]), "--person", "S2001", *confirmed)
    assert "Revocato il collegamento ancora valido inviato a mario.rossi@example.org" in out


def test_review_help_is_italian(cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    """Issue 10.13: the review commands speak Italian."""
    from credmail.entrypoints.cli import main

    for command in ([], ["list"], ["show"], ["approve"], ["reject"], ["discard"]):
        with pytest.raises(SystemExit):
            main(["review", *command, "--help"])
        text = capsys.readouterr().out
        assert "show this help message" not in text and "usage:" not in text
        assert "uso: credmail review" in text and "mostra questo aiuto ed esce" in text
    with pytest.raises(SystemExit):
        main(["review", "approve", "--help"])
    assert "conferma un collegamento di tipo diverso" in capsys.readouterr().out


def test_replies_name_the_minor_and_say_how_to_reach_the_secretariat(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """Issue 10.16: no 'non risponda'; the minor is addressed by the name on file."""
    app = make_app(server_settings(dovecot, smtp, db_url))
    dovecot.append(sample("minor-own-address"))
    dovecot.append(sample("adult-guardian"))
    run_once(app)
    minor, adult = sorted(smtp.handler.parsed(), key=lambda m: str(m["To"]))[::-1]
    assert str(minor["To"]) == "sara.verdi@studenti.example.org"
    assert body_text(minor).startswith("Gentile Sara Verdi,")
    for reply in (minor, adult):
        text = body_text(reply)
        assert "non risponda" not in text
        assert "può rispondere a questo messaggio" in text
