"""Near misses against real Dovecot, real aiosmtpd, SQLite and PostgreSQL: `flag` marks
the message with a keyword and lists it in the console, whose actions run the normal
decision; `guide` answers once per sender per 30 days, never automated mail."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from sqlalchemy import update
from starlette.testclient import TestClient

from credmail.adapters.db.models import PersonRow
from credmail.bootstrap import App
from credmail.core.parse import parse_message
from credmail.core.values import InboundMail, SenderAuth
from credmail.entrypoints.daemon import run_once
from credmail.samples import Sample
from credmail.service.ports import AuditFilter
from credmail.service.privacy import Retention, forget, show
from credmail.service.review import Actor, ReviewError
from credmail.web.app import create_web_app
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import body_text, make_app, server_settings
from tests.web.conftest import CLI, PASSWORD, ROOT, client_at, sign_in

pytestmark = pytest.mark.integration

KEYWORD = b"ForseCredenziali"
MARIO = "Mario Rossi <mario.rossi@example.org>"
BIANCHI = "famiglia.bianchi@example.org"


def _mail(name: str, sender: str, subject: str, body: str, **headers: str) -> Sample:
    return Sample(name, sender, subject, body, "untouched", headers=tuple(headers.items()))


FORGOT = _mail(
    "forgot", MARIO, "Password dimenticata registro elettronico", "Non riesco più a entrare."
)
BLANK = _mail(
    "blank", BIANCHI, "", "Buongiorno, vorrei le credenziali del registro per Giulia. Grazie"
)
STRANGER = _mail("stranger", "zeta@example.net", "Credenziali", "Non ho mai avuto la password.")
ORDINARY = _mail("ordinary", MARIO, "Assenza di Luca", "Domani Luca sarà assente. Grazie")
NEWSLETTER = _mail(
    "newsletter",
    "notizie@fornitore.example",
    "Hai dimenticato la password del registro?",
    "Scopri come recuperare la password di ClasseViva.",
    **{"List-Id": "<notizie.fornitore.example>", "Precedence": "bulk"},
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now


def _app(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, mode: str, clock: Clock, tmp: Path
) -> App:
    settings = server_settings(
        dovecot,
        smtp,
        db_url,
        classify__near_miss=mode,
        console__totp_key_file=str(tmp / "totp.key"),
    )
    return make_app(settings, clock=clock)


def _where(dovecot: Dovecot, folder: str = "INBOX") -> dict[str, tuple[bytes, ...]]:
    """Message-ID -> flags, for the messages in `folder`."""
    found = {}
    for data in dovecot.folder_messages(folder).values():
        mid = parse_message(data[b"BODY[]"]).message_id
        assert mid is not None
        found[mid] = data[b"FLAGS"]
    return found


def _append(dovecot: Dovecot, *mails: Sample) -> dict[str, str]:
    ids = {}
    for mail in mails:
        raw = mail.to_bytes()
        ids[mail.name] = parse_message(raw).message_id or ""
        dovecot.append(raw)
    return ids


def _console(app: App) -> tuple[TestClient, str]:
    app.desks.staff.add("olga", "operatore", PASSWORD, CLI)
    client = client_at(create_web_app(app, app.settings), "203.0.113.8")
    return client, sign_in(client, "olga")


def test_flag_marks_lists_and_the_actions_work(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    app = _app(dovecot, smtp, db_url, "flag", Clock(), tmp_path)
    ids = _append(dovecot, FORGOT, BLANK, STRANGER, ORDINARY, NEWSLETTER)
    run_once(app)
    flags = _where(dovecot)
    assert set(flags) == set(ids.values())  # nothing moved
    for name in ("forgot", "blank", "stranger"):
        assert KEYWORD in flags[ids[name]] and b"\\Seen" not in flags[ids[name]], name
    for name in ("ordinary", "newsletter"):
        assert flags[ids[name]] == (), name
    assert smtp.handler.parsed() == []  # flag mode answers nobody

    client, csrf = _console(app)
    home = client.get(f"{ROOT}/").text
    assert 'Forse richieste di credenziali</h2><p class="big">3</p>' in home
    page = client.get(f"{ROOT}/forse-credenziali").text
    assert "Forse richieste di credenziali" in page and "Password dimenticata" in page
    assert "(senza oggetto)" in page and "Assenza di Luca" not in page
    items = {r.message_id: r.id for r in app.desks.near_miss.listing()}
    assert [s.id for s in app.desks.near_miss.open_items()] == sorted(items.values())

    adult = client.post(
        f"{ROOT}/forse-credenziali/tratta",
        data={"csrf_token": csrf, "messaggio": items[ids["forgot"]], "tipo": "adult"},
    )
    assert adult.status_code == 303 and adult.headers["location"].endswith("fatto=nm_inviata")
    student = client.post(
        f"{ROOT}/forse-credenziali/tratta",
        data={
            "csrf_token": csrf,
            "messaggio": items[ids["blank"]],
            "tipo": "student",
            "studente": "Giulia Bianchi",
        },
    )
    assert student.headers["location"].endswith("fatto=nm_inviata"), student.text
    dismissed = client.post(
        f"{ROOT}/forse-credenziali/archivia",
        data={"csrf_token": csrf, "messaggio": items[ids["stranger"]]},
    )
    assert dismissed.headers["location"].endswith("fatto=nm_archiviata")
    again = client.post(
        f"{ROOT}/forse-credenziali/archivia",
        data={"csrf_token": csrf, "messaggio": items[ids["stranger"]]},
    )
    assert again.status_code == 409 and "già stato gestito" in again.text

    run_once(app)  # the daemon's next sync moves the treated and takes the keywords off
    sent = {str(m["To"]): m for m in smtp.handler.parsed()}
    assert set(sent) == {"mario.rossi@example.org", BIANCHI}
    assert "Giulia" in body_text(sent[BIANCHI])
    answered = _where(dovecot, "Credenziali/Evase")
    assert set(answered) == {ids["forgot"], ids["blank"]}
    inbox = _where(dovecot)
    assert set(inbox) == {ids["stranger"], ids["ordinary"], ids["newsletter"]}
    assert KEYWORD not in inbox[ids["stranger"]]
    assert app.desks.near_miss.listing() == []
    entries, _ = app.desks.audit.listing(AuditFilter(actor="olga"))
    assert {e.action for e in entries} >= {"near_miss.treat", "near_miss.dismiss"}


def test_a_named_student_not_of_the_sender_goes_to_review(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    app = _app(dovecot, smtp, db_url, "flag", Clock(), tmp_path)
    ids = _append(dovecot, BLANK)
    run_once(app)
    (item,) = app.desks.near_miss.listing()
    done = app.desks.near_miss.treat(item.id, CLI, "student", "Luca Rossi")
    assert done.outcome == "review"
    run_once(app)
    assert smtp.handler.parsed() == []
    assert set(_where(dovecot, "Credenziali/Revisione")) == {ids["blank"]}
    assert [r.message_id for r in app.review.pending()] == [ids["blank"]]


def _replies(smtp: SmtpServer) -> list[EmailMessage]:
    return [m for m in smtp.handler.parsed() if "Come chiedere" in str(m["Subject"])]


def test_guide_answers_once_per_sender_per_30_days_never_automated_mail(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    app = _app(dovecot, smtp, db_url, "guide", clock, tmp_path)
    with app.uow() as uow:  # Mario's family reads Romanian: Italian first, then Romanian
        mario = update(PersonRow).where(PersonRow.username == "G1001")
        uow.session.execute(mario.values(language="ro"))
        uow.commit()
    ids = _append(dovecot, FORGOT, NEWSLETTER, ORDINARY)
    run_once(app)
    (reply,) = _replies(smtp)
    assert str(reply["To"]) == "mario.rossi@example.org"
    assert reply["Auto-Submitted"] == "auto-replied"
    assert str(reply["In-Reply-To"]).strip() == ids["forgot"]
    text = body_text(reply)
    assert '"richiesta credenziali"' in text and "http" not in text
    assert text.index("abbiamo ricevuto il Suo messaggio") < text.index("Am primit mesajul")
    assert KEYWORD in _where(dovecot)[ids["forgot"]]

    second = _mail("forgot-2", MARIO, "credenziali registro", "Me le mandate?")
    _append(dovecot, second)
    clock.now += timedelta(days=10)
    run_once(app)
    assert len(_replies(smtp)) == 1  # within 30 days: flagged, not answered again
    assert len(app.desks.near_miss.listing()) == 2

    third = _mail("forgot-3", MARIO, "password registro", "Non funziona ancora.")
    _append(dovecot, third)
    clock.now += timedelta(days=25)
    run_once(app)
    assert len(_replies(smtp)) == 2


def test_guide_never_answers_the_school_itself_or_a_reply_to_its_guide(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    app = _app(dovecot, smtp, db_url, "guide", Clock(), tmp_path)
    own = _mail("own", "segreteria@istitutostanga.edu.it", "Password del registro", "Persa.")
    unauthenticated = Sample(
        "spoofed", "x@example.com", "Credenziali registro", "Le ho perse.", "untouched", dmarc=None
    )
    _append(dovecot, own, unauthenticated, STRANGER)
    run_once(app)
    (reply,) = _replies(smtp)
    assert str(reply["To"]) == "zeta@example.net"
    reply_id = str(reply["Message-ID"])
    headers = {"In-Reply-To": reply_id}
    _append(
        dovecot, _mail("answer", "zeta@example.net", "Re: Come chiedere", "La password?", **headers)
    )
    run_once(app)
    assert len(_replies(smtp)) == 1
    flagged = {r.sender for r in app.desks.near_miss.listing()}
    assert flagged == {"zeta@example.net", "x@example.com"}  # the school's own mail: not
    assert len(app.desks.near_miss.listing()) == 3  # the answer to the guide: flagged only


def test_privacy_shows_and_forgets_near_misses_and_retention_purges_decided(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    clock = Clock()
    app = _app(dovecot, smtp, db_url, "flag", clock, tmp_path)
    _append(dovecot, STRANGER, FORGOT)
    run_once(app)
    with app.uow() as uow:
        held = show(uow, "zeta@example.net", clock())["near_misses"]
        assert [n["rule"] for n in held] == ["credentials_in_subject"]
        assert forget(uow, "zeta@example.net")["near_misses"] == 1
        uow.commit()
    (mario,) = app.desks.near_miss.listing()
    app.desks.near_miss.dismiss(mario.id, CLI)
    clock.now += timedelta(days=31)
    with app.uow() as uow:
        assert Retention().run(uow, clock())["near_misses"] == 1
        uow.commit()
    assert app.desks.near_miss.listing(None) == []


def test_maildir_reads_each_mail_once_and_a_failing_mail_is_only_skipped(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, tmp_path: Path
) -> None:
    root = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (root / sub).mkdir(parents=True)
    for number, mail in enumerate((FORGOT, ORDINARY, STRANGER)):
        (root / "new" / f"17000000{number:02d}.t{number}.host").write_bytes(mail.to_bytes())
    settings = server_settings(
        dovecot, smtp, sqlite_url, mailbox__kind="maildir", mailbox__maildir_path=str(root)
    )
    app = make_app(settings)
    real_check = app.pipeline.processor.authenticator.check

    def check(raw: bytes, mail: InboundMail) -> SenderAuth:
        if mail.sender == "zeta@example.net":
            raise ValueError("a message the checks cannot read")
        return real_check(raw, mail)

    app.pipeline.processor.authenticator.check = check  # type: ignore[method-assign]
    first = app.pipeline.sync(app.source_factory())
    assert first.near_misses == 1  # the failing one skipped, the others read
    assert [r.sender for r in app.desks.near_miss.listing()] == ["mario.rossi@example.org"]
    again = app.pipeline.sync(app.source_factory())
    assert again.near_misses == 0 and len(app.desks.near_miss.listing()) == 1
    assert sorted(p.name for p in (root / "new").iterdir())[0].startswith("1700000000")


def test_only_the_review_staff_treat_or_dismiss_a_near_miss(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    settings = server_settings(
        dovecot,
        smtp,
        db_url,
        classify__near_miss="flag",
        review__staff='["anna"]',
        console__totp_key_file=str(tmp_path / "totp.key"),
    )
    app = make_app(settings, clock=Clock())
    _append(dovecot, FORGOT)
    run_once(app)
    (near,) = app.desks.near_miss.listing()
    olga = Actor("olga", "cli")
    with pytest.raises(ReviewError, match="non è tra il personale autorizzato"):
        app.desks.near_miss.treat(near.id, olga, "adult")
    with pytest.raises(ReviewError, match="non è tra il personale autorizzato"):
        app.desks.near_miss.dismiss(near.id, olga)
    assert [n.id for n in app.desks.near_miss.listing()] == [near.id]  # still open
    app.desks.near_miss.dismiss(near.id, Actor("anna", "cli"))
    assert app.desks.near_miss.listing() == []
