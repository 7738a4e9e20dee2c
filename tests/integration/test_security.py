"""Security requirements end to end: real Dovecot, aiosmtpd, SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage

import pytest

from credmail.adapters.db.directory_import import import_records
from credmail.bootstrap import App
from credmail.entrypoints.daemon import run_once
from credmail.logs import configure_logging
from credmail.samples import AUTHSERV_ID, SAMPLES, directory_csv
from credmail.service.directory_csv import read_directory
from credmail.service.housekeeping import housekeeping
from credmail.service.links import check_token, redeem_token
from credmail.service.privacy import Retention
from credmail.service.review import Actor, ReviewError
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import body_text, link_in, make_app, server_settings

pytestmark = pytest.mark.integration

VICTIM = "mario.rossi@example.org"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def _text(msg: EmailMessage) -> str:
    body = msg.get_body()
    assert body is not None
    return str(body.get_content())


def recipients(smtp: SmtpServer) -> list[str]:
    return [rcpt for _from, rcpts, _raw in smtp.handler.messages for rcpt in rcpts]


def test_forged_authentication_results_get_nothing_sent(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    dovecot.append(request(VICTIM, ar_id="mx.evil.example"))  # foreign authserv-id
    dovecot.append(request(VICTIM, dmarc="fail"))  # dmarc=fail
    dovecot.append(request(VICTIM, dmarc=None))  # nothing at all
    two = request(VICTIM).replace(
        b"Authentication-Results:",
        f"Authentication-Results: {AUTHSERV_ID}; dmarc=fail header.from=example.org\r\n"
        "Authentication-Results:".encode(),
        1,
    )
    dovecot.append(two)  # two claiming our id

    run_once(app)

    assert smtp.handler.messages == []
    reasons = [item.reasons for item in app.review.pending()]
    assert all("unauthenticated_sender" in r for r in reasons) and len(reasons) == 4
    assert ("auth_results_conflict", "unauthenticated_sender") in reasons


def test_reply_to_and_other_headers_never_receive_anything(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    dovecot.append(
        request(
            VICTIM,
            Reply_To="attacker@evil.example",
            Sender="attacker@evil.example",
            Cc="attacker@evil.example",
            body="Rispondete a attacker@evil.example",
        )
    )
    dovecot.append(request('"mario.rossi@example.org" <attacker@evil.example>'))
    run_once(app)
    assert recipients(smtp) == [VICTIM]
    assert all(b"evil.example" not in raw for _f, _r, raw in smtp.handler.messages)
    (spoof,) = app.review.pending()
    assert spoof.reasons == ("display_name_address", "unknown_sender")


def test_100_spoofed_requests_against_one_victim(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str
) -> None:
    """Worst case: authentication is off, so the limits are all that protects the victim."""
    app = make_app(server_settings(dovecot, smtp, sqlite_url, auth__require="off"))
    for _ in range(100):
        dovecot.append(request(VICTIM, dmarc=None))
    run_once(app)

    templates = [str(m["Subject"]) for m in smtp.handler.parsed()]
    assert recipients(smtp) == [VICTIM, VICTIM]
    assert templates[0].startswith("Credenziali Registro Elettronico")  # one link
    assert templates[1].startswith("Collegamento già inviato")  # one calm repeat reply
    assert app.review.pending() == []  # repeats inside the window are not review work


def test_per_address_daily_limit_still_serves_a_family(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    clock = Clock()
    app = make_app(server_settings(dovecot, smtp, db_url), clock=clock)
    family = "famiglia.bianchi@example.org"
    asks = [
        ("richiesta credenziali", "Sono Anna Bianchi"),
        ("richiesta credenziali", "Sono Paolo Bianchi"),
        ("richiesta credenziali studente", "Per Giulia"),
        ("richiesta credenziali studente", "Per Marco"),
    ]
    for subject, body in asks:
        dovecot.append(request(family, subject=subject, body=body))
        run_once(app)
        clock.advance(minutes=20)
    bodies = [_text(m) for m in smtp.handler.parsed()]
    assert sum("/reset/" in b for b in bodies) == 3
    assert "Troppe richieste" in str(smtp.handler.parsed()[-1]["Subject"])
    assert [i.reasons for i in app.review.pending()] == [("rate_limited",)]
    clock.advance(days=1)
    dovecot.append(request(family, subject="richiesta credenziali studente", body="Per Marco"))
    run_once(app)
    assert "/reset/" in _text(smtp.handler.parsed()[-1])


def test_global_circuit_breaker(dovecot: Dovecot, smtp: SmtpServer, db_url: str) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url, limits__global_replies_per_hour="3"))
    senders = [
        "mario.rossi@example.org",
        "g.esposito@example.org",
        "davide.neri@example.org",
        "franco.gallo@example.org",
    ]
    for sender in senders:
        dovecot.append(request(sender))
    run_once(app)
    assert len(smtp.handler.messages) == 3
    assert [i.reasons for i in app.review.pending()] == [("circuit_breaker",)]
    dovecot.append(request("sara.verdi@studenti.example.org"))  # still tripped
    run_once(app)
    assert len(smtp.handler.messages) == 3
    with app.uow() as uow:
        assert uow.breaker.reset(app.clock())
        uow.commit()
    dovecot.append(request("elena.neri@example.org"))
    run_once(app)
    assert len(smtp.handler.messages) == 4  # counting starts again from the reset


def test_a_repeat_a_minute_later_gets_one_calm_reply_and_no_review(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    clock = Clock()
    clock.now = datetime(2026, 7, 1, 8, 5, tzinfo=UTC)  # 10:05 in Europe/Rome (summer)
    app = make_app(server_settings(dovecot, smtp, db_url), clock=clock)
    teacher = "g.esposito@example.org"
    for _ in range(3):
        dovecot.append(request(teacher))
        run_once(app)
        clock.advance(minutes=1)
    link, calm = smtp.handler.parsed()
    assert recipients(smtp) == [teacher, teacher]
    assert "/reset/" in body_text(link)
    assert str(calm["Subject"]).startswith("Collegamento già inviato")
    text = body_text(calm)
    assert "Le abbiamo già inviato\r\nun collegamento alle 10:05" in text
    assert "posta\r\nindesiderata" in text and "/reset/" not in text
    assert text.startswith("Gentile Giovanna Esposito,")  # the name on file (issue 10.9)
    assert "non risponda" not in text
    assert app.review.pending() == []
    clock.advance(minutes=15)  # the window is over: a new link, as before
    dovecot.append(request(teacher))
    run_once(app)
    assert "/reset/" in body_text(smtp.handler.parsed()[-1])


def test_a_repeat_after_the_link_was_used_is_a_new_request(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """The calm "already sent" reply only while the earlier link can still be used: once
    the family has spent it (the register task is done), a request is answered anew."""
    clock = Clock()
    clock.now = datetime(2026, 7, 1, 8, 5, tzinfo=UTC)
    app = make_app(server_settings(dovecot, smtp, db_url), clock=clock)
    teacher = "g.esposito@example.org"
    dovecot.append(request(teacher))
    run_once(app)
    (first,) = smtp.handler.parsed()
    assert app.desks.reset.spend(link_in(first).rpartition("/")[2]).status.value == "done"
    clock.advance(minutes=2)
    dovecot.append(request(teacher))
    run_once(app)
    second = smtp.handler.parsed()[-1]
    assert not str(second["Subject"]).startswith("Collegamento già inviato")
    assert "/reset/" in body_text(second) and link_in(second) != link_in(first)
    assert app.review.pending() == []


def test_acknowledgements_cannot_trip_the_breaker(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    settings = server_settings(
        dovecot,
        smtp,
        db_url,
        replies__acknowledge_unknown="true",
        limits__global_replies_per_hour="3",
        limits__acknowledgements_per_hour="2",
    )
    app = make_app(settings)
    for n in range(6):
        dovecot.append(request(f"sconosciuto{n}@example.net"))
    run_once(app)
    assert len(smtp.handler.messages) == 2  # the acknowledgements' own cap
    reasons = [item.reasons for item in app.review.pending()]
    assert reasons.count(("unknown_sender", "acknowledgement_limited")) == 4
    for sender in ("mario.rossi@example.org", "g.esposito@example.org"):
        dovecot.append(request(sender))
    run_once(app)
    assert recipients(smtp)[2:] == ["mario.rossi@example.org", "g.esposito@example.org"]
    with app.uow() as uow:
        assert not uow.breaker.tripped()


def test_logs_never_hold_addresses_tokens_or_links(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("debug", "json")
    app = make_app(server_settings(dovecot, smtp, db_url))
    for sample in SAMPLES:
        dovecot.append(sample.to_bytes())
    run_once(app)
    item = next(i for i in app.review.pending() if i.reasons == ("ambiguous_person",))
    app.review.approve(item.id, "G1003", Actor("segreteria", "cli"))
    run_once(app)
    logs = capsys.readouterr().err
    assert "message.handled" in logs  # the capture really saw the run
    links = [link_in(m) for m in smtp.handler.parsed() if "/reset/" in body_text(m)]
    assert links
    for link in links:
        token = link.rsplit("/", 1)[1]
        assert token not in logs and token.split(".")[1] not in logs
    assert "/reset/" not in logs
    for sample in SAMPLES:
        address = sample.sender.rpartition("<")[2].rstrip(">").lower()
        assert address not in logs.lower(), address
    assert "Buongiorno" not in logs


def test_tokens_die_with_a_directory_change_and_are_spent_once(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url))
    dovecot.append(request(VICTIM))
    dovecot.append(request("g.esposito@example.org"))
    run_once(app)
    mario, giovanna = (link_in(m) for m in smtp.handler.parsed())
    with app.uow() as uow:
        first = redeem_token(uow, giovanna, app.clock())
        second = redeem_token(uow, giovanna, app.clock())
        uow.commit()
    assert (first.state, second.state) == ("redeemed", "used")
    selector = mario.rsplit("/", 1)[1].split(".")[0]
    with app.uow() as uow:
        assert not check_token(uow, f"{selector}.wrong-verifier", app.clock()).found
        assert check_token(uow, mario, app.clock()).state == "valid"
    changed = directory_csv(date.today()).replace(
        b"mario.rossi@example.org", b"mario.rossi@newmail.example"
    )
    with app.uow() as uow:
        import_records(uow.session, read_directory(changed), prune=False)
        uow.commit()
    with app.uow() as uow:
        assert check_token(uow, mario, app.clock()).state == "stale"
        assert redeem_token(uow, mario, app.clock()).valid is False


def test_link_expiry_is_absolute(dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str) -> None:
    clock = Clock()
    app = make_app(server_settings(dovecot, smtp, sqlite_url, links__ttl_minutes="30"), clock=clock)
    dovecot.append(request(VICTIM))
    run_once(app)
    link = link_in(smtp.handler.parsed()[0])
    clock.advance(minutes=29)
    with app.uow() as uow:
        assert check_token(uow, link, clock()).valid
    clock.advance(minutes=2)
    with app.uow() as uow:
        assert check_token(uow, link, clock()).state == "expired"


def test_acknowledgement_for_authenticated_unknown_senders_only(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url, replies__acknowledge_unknown="true"))
    dovecot.append(request("nuovo.genitore@example.net"))
    dovecot.append(request("falso@example.net", dmarc="fail"))
    run_once(app)
    assert recipients(smtp) == ["nuovo.genitore@example.net"]
    assert "/reset/" not in _text(smtp.handler.parsed()[0])
    assert len(app.review.pending()) == 2


def test_review_is_for_named_staff(dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str) -> None:
    app = make_app(server_settings(dovecot, smtp, sqlite_url, review__staff='["rossi.segreteria"]'))
    dovecot.append(request("sconosciuto@example.net"))
    run_once(app)
    (item,) = app.review.pending()
    with pytest.raises(ReviewError, match="non è tra il personale autorizzato"):
        app.review.discard(item.id, Actor("intruso", "cli"))
    app.review.discard(item.id, Actor("rossi.segreteria", "cli"))
    assert app.review.pending() == []


def test_privacy_show_forget_and_retention(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from credmail.service.privacy import forget, show

    clock = Clock()
    app = make_app(server_settings(dovecot, smtp, db_url), clock=clock)
    dovecot.append(request("sconosciuto@example.net"))
    dovecot.append(request(VICTIM))
    run_once(app)
    with app.uow() as uow:
        held = show(uow, "Sconosciuto@Example.NET", clock())
        assert len(held["review_items"]) == 1 and held["directory"] == []
        assert len(show(uow, VICTIM, clock())["outbox"]) == 1
        assert forget(uow, "sconosciuto@example.net")["review_items"] == 1
        uow.commit()
    with app.uow() as uow:
        assert show(uow, "sconosciuto@example.net", clock())["review_items"] == []
    _decide_everything(app)
    clock.advance(days=31)
    purged = housekeeping(app.uow, clock, Retention(days=30))
    # the forgotten request's Message-ID went with `forget`; the victim's goes now
    assert purged["outbox"] == 1 and purged["tokens"] == 1 and purged["ledger"] == 1
    with app.uow() as uow:
        assert show(uow, VICTIM, clock())["outbox"] == []
    json.dumps(held)  # JSON-ready


def _decide_everything(app: App) -> None:
    for item in app.review.pending():
        app.review.discard(item.id, Actor("segreteria", "cli"))
