"""The secretariat's digest and the sysadmin's alerts (issue 28, items 1 and 2).

Real Dovecot, aiosmtpd, SQLite and PostgreSQL; time is the test's clock (the school's
days and hours), the rest is as the daemon runs it."""

from __future__ import annotations

import asyncio
import re
import threading
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from credmail.adapters.db.models import NotificationRow
from credmail.adapters.db.oauth_store import OAuthStore
from credmail.bootstrap import App
from credmail.runners.systemd import Heartbeat
from credmail.runners.watcher import InboxWatcher
from credmail.samples import Sample
from credmail.service.notify.alerts import Watch
from credmail.service.ports import RegisterTask
from credmail.service.presentation import reason_label
from credmail.service.review import Actor
from tests.integration.test_campaign import ACTOR, campaign_mails, run_until_done, school
from tests.support.campaign_data import school_year
from tests.support.daemon import wait_for
from tests.support.provider_mail import dsn_postfix
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import body_text as mail_text
from tests.support.wiring import make_app, server_settings, sync_inbox

pytestmark = pytest.mark.integration

STAFF = '["segreteria.interna@istitutostanga.edu.it", "vicepreside@istitutostanga.edu.it"]'
ADMIN = '["sistemista@istitutostanga.edu.it"]'
TUESDAY_0750 = datetime(2026, 12, 8, 6, 50, tzinfo=UTC)  # 07:50 in Rome


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def notify_app(dovecot: Dovecot, smtp: SmtpServer, db_url: str, clock: Clock, **extra: str) -> App:
    values = {
        "notify__staff": STAFF,
        "notify__admin": ADMIN,
        "notify__digest_at": '["07:45", "13:00"]',
        "notify__mailbox_down_minutes": "10",
        "notify__alert_repeat_hours": "12",
        "school__closed_days": '["2026-12-24..2027-01-06"]',
        "web__public_url": "https://credenziali.istitutostanga.edu.it",
    }
    return make_app(server_settings(dovecot, smtp, db_url, **(values | extra)), clock)


def body_text(msg: EmailMessage) -> str:
    return mail_text(msg).replace("\r\n", "\n")


def deliver(app: App) -> None:
    asyncio.run(app.delivery.drain())


def mails(smtp: SmtpServer, template_subject: str) -> list[EmailMessage]:
    return [m for m in smtp.handler.parsed() if template_subject in str(m["Subject"])]


def waiting_items(app: App, dovecot: Dovecot, clock: Clock) -> tuple[int, int, int]:
    """Two review items (unknown senders, two days and one hour old) and a register task
    (five hours old); returns their numbers."""
    start = clock.now
    clock.now = start - timedelta(days=2)
    dovecot.append(request("sconosciuto@example.net"))
    sync_inbox(app)
    clock.now = start - timedelta(hours=1)
    dovecot.append(request("altro.sconosciuto@example.net"))
    sync_inbox(app)
    clock.now = start
    with app.uow() as uow:
        task = uow.tasks.add(
            RegisterTask(
                id=0,
                username="G1001",
                purpose="adult_reset",
                role="guardian",
                first_name="Mario",
                last_name="Rossi",
                address="mario.rossi@example.org",
                requested_at=start - timedelta(hours=6),
                confirmed_at=start - timedelta(hours=5),
                status="open",
            ),
            "sel-task-1",
        )
        uow.commit()
    old, new = sorted(item.id for item in app.review.pending())
    return old, new, task


def test_the_digest_lists_what_waits_oldest_first_in_italian(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    clock = Clock(TUESDAY_0750)
    app = notify_app(dovecot, smtp, db_url, clock)
    old, new, task = waiting_items(app, dovecot, clock)
    assert app.digest.run_due() == 2
    deliver(app)
    digests = mails(smtp, "Da fare in segreteria")
    assert sorted(str(m["To"]) for m in digests) == [
        "segreteria.interna@istitutostanga.edu.it",
        "vicepreside@istitutostanga.edu.it",
    ]
    msg = digests[0]
    assert str(msg["Subject"]) == (
        "Da fare in segreteria: 2 richieste da rivedere, 1 attività nel registro - Istituto Stanga"
    )
    assert msg["Auto-Submitted"] == "auto-generated"
    text = body_text(msg)
    console = "https://credenziali.istitutostanga.edu.it/console"
    assert "Richieste da rivedere: 2" in text
    assert "Attività da eseguire nel registro: 1" in text
    unknown = "l'indirizzo del mittente non è registrato"
    first = text.index(f"n. {old}, in attesa da 2 giorni: {unknown}")
    second = text.index(f"n. {new}, in attesa da 1 ora: {unknown}")
    assert first < second  # the oldest first
    assert f"{console}/revisione/{old}" in text and f"{console}/revisione/{new}" in text
    assert f"n. {task}, in attesa da 5 ore\n  {console}/registro" in text
    assert "Il prossimo riepilogo arriverà l'8 dicembre 2026 alle 13:00" in text

    for personal in ("sconosciuto@example.net", "Rossi", "G1001", "mario.rossi"):
        assert personal not in text  # the details stay behind the console's sign-in


def test_a_deferred_request_leaves_the_digest_until_it_is_due(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    clock = Clock(TUESDAY_0750)
    app = notify_app(dovecot, smtp, db_url, clock)
    old, new, _task = waiting_items(app, dovecot, clock)
    app.desks.deferrals.defer(old, date(2026, 12, 9), Actor("segreteria", "cli"))
    assert app.digest.run_due() == 2
    deliver(app)
    (first, _) = mails(smtp, "Da fare in segreteria")
    text = body_text(first)
    assert "Richieste da rivedere: 1" in text
    assert f"n. {new}, in attesa da 1 ora" in text
    assert f"n. {old}, in attesa da 2 giorni" not in text  # deferred: not listed
    clock.now = TUESDAY_0750 + timedelta(days=1)  # Wednesday 07:50: the deferral is over
    assert app.digest.run_due() == 2
    deliver(app)
    latest = body_text(mails(smtp, "Da fare in segreteria")[-1])
    assert "Richieste da rivedere: 2" in latest
    back, younger = f"n. {old}, in attesa da 3 giorni", f"n. {new}, in attesa da 25 ore"
    assert latest.index(back) < latest.index(younger)  # back, the oldest first


def test_the_digest_counts_the_near_misses_left_in_the_mailbox(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    clock = Clock(TUESDAY_0750 - timedelta(hours=3))
    app = notify_app(dovecot, smtp, db_url, clock, classify__near_miss="flag")
    forgot = Sample(
        "forgot",
        "Mario Rossi <mario.rossi@example.org>",
        "Password dimenticata registro elettronico",
        "Non riesco più a entrare.",
        "untouched",
    )
    dovecot.append(forgot.to_bytes())
    sync_inbox(app)
    (near,) = app.desks.near_miss.listing()
    clock.now = TUESDAY_0750
    assert app.digest.run_due() == 2
    deliver(app)
    (first, _) = mails(smtp, "Da fare in segreteria")
    assert "1 possibile richiesta di credenziali" in str(first["Subject"])
    text = body_text(first)
    console = "https://credenziali.istitutostanga.edu.it/console"
    assert "Forse richieste di credenziali (messaggi rimasti nella casella): 1" in text
    assert f"n. {near.id}, in attesa da 3 ore\n  {console}/forse-credenziali" in text
    for personal in ("Password dimenticata", "mario.rossi", "Rossi"):
        assert personal not in text


def test_nothing_is_sent_when_nothing_waits_and_a_slot_is_looked_at_once(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    clock = Clock(TUESDAY_0750)
    app = notify_app(dovecot, smtp, db_url, clock)
    assert app.digest.run_due() == 0  # nothing waits at 07:45
    dovecot.append(request("sconosciuto@example.net"))
    sync_inbox(app)
    clock.now += timedelta(hours=1)
    assert app.digest.run_due() == 0  # 07:45 was looked at: not sent at 08:50
    clock.now = TUESDAY_0750.replace(hour=12, minute=0)  # 13:00 in Rome
    assert app.digest.run_due() == 2
    deliver(app)
    assert len(mails(smtp, "1 richiesta da rivedere - Istituto Stanga")) == 2


def test_exactly_once_per_slot_across_a_restart_and_late_the_same_day(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    clock = Clock(TUESDAY_0750.replace(hour=9))  # 10:00: the daemon was down at 07:45
    app = notify_app(dovecot, smtp, db_url, clock)
    dovecot.append(request("sconosciuto@example.net"))
    sync_inbox(app)
    assert app.digest.run_due() == 2  # the missed 07:45 goes late, the same day
    restarted = notify_app(dovecot, smtp, db_url, clock)
    assert restarted.digest.run_due() == 0
    assert restarted.digest.send_now() == 2  # `notify digest`: outside the schedule
    clock.now += timedelta(days=4)  # Saturday: not a school day here
    assert restarted.digest.run_due() == 0
    clock.now = datetime(2026, 12, 28, 9, tzinfo=UTC)  # a Monday in the Christmas closure
    assert restarted.digest.run_due() == 0
    with restarted.uow(read_only=True) as uow:
        slots = uow.session.scalars(
            select(NotificationRow.slot).where(NotificationRow.kind == "digest")
        ).all()
    assert [s for s in slots if not s.startswith("manual")] == ["2026-12-08 07:45"]


def test_the_digest_counts_against_no_familys_limits(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    clock = Clock(TUESDAY_0750)
    app = notify_app(
        dovecot,
        smtp,
        db_url,
        clock,
        limits__global_replies_per_hour="1",
        notify__staff='["mario.rossi@example.org"]',  # a staff member who is also a parent
        limits__sender_replies_per_day="1",
    )
    dovecot.append(request("sconosciuto@example.net"))
    sync_inbox(app)
    assert app.digest.run_due() == 1
    assert app.alerts.send_test() == 1
    dovecot.append(request("mario.rossi@example.org"))
    sync_inbox(app)
    deliver(app)
    links = [m for m in smtp.handler.parsed() if "/reset/" in body_text(m)]
    assert [str(m["To"]) for m in links] == ["mario.rossi@example.org"]
    assert len(app.review.pending()) == 1  # only the unknown sender: no breaker, no limit


def test_an_alert_begins_and_ends_with_the_real_mailbox_stopped_and_started(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    clock = Clock(TUESDAY_0750)
    app = notify_app(dovecot, smtp, db_url, clock)
    watch = Watch(clock.now - timedelta(hours=1))
    sync_inbox(app)
    assert app.alerts.check(watch) == []
    dovecot.stop()
    try:
        clock.now += timedelta(minutes=5)
        with pytest.raises(ConnectionRefusedError):
            sync_inbox(app)
        assert app.alerts.check(watch) == []  # 5 minutes: not yet "down"
        clock.now += timedelta(minutes=6)
        assert app.alerts.check(watch) == ["mailbox_down"]
        assert app.alerts.check(watch) == []  # told once
        deliver(app)
    finally:
        dovecot.start()
    (begun,) = mails(smtp, "[credmail] Problema")
    assert str(begun["To"]) == "sistemista@istitutostanga.edu.it"
    assert str(begun["Subject"]) == (
        "[credmail] Problema: la casella della segreteria non risponde - Istituto Stanga"
    )
    text = body_text(begun)
    assert "Dettagli tecnici: no successful sync for 11 minutes" in text
    assert "Riceverà un altro messaggio quando il problema sarà risolto" in text
    clock.now += timedelta(minutes=1)
    sync_inbox(app)
    assert app.alerts.check(watch) == ["mailbox_down"]
    deliver(app)
    (ended,) = mails(smtp, "[credmail] Risolto")
    assert "la casella della segreteria non risponde" in str(ended["Subject"])
    assert "Non serve fare nulla" in body_text(ended)


def test_a_state_that_comes_back_is_announced_once_per_repeat_window(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    clock = Clock(TUESDAY_0750)
    app = notify_app(dovecot, smtp, db_url, clock)
    watch = Watch(clock.now)
    sync_inbox(app)
    with app.uow() as uow:
        uow.breaker.trip(clock.now, "test")
        uow.commit()
    assert app.alerts.check(watch) == ["breaker"]
    app.desks.limits.reset(Actor("segreteria", "cli"))
    assert app.alerts.check(watch) == ["breaker"]  # the end follows at once
    deliver(app)
    clock.now += timedelta(hours=1)
    sync_inbox(app)
    with app.uow() as uow:
        uow.breaker.trip(clock.now, "test")
        uow.commit()
    assert app.alerts.check(watch) == []  # again within 12 hours: not announced
    clock.now += timedelta(hours=11)
    restarted = notify_app(dovecot, smtp, db_url, clock)
    sync_inbox(restarted)
    assert restarted.alerts.check(watch) == ["breaker"]  # still on after the window
    assert restarted.alerts.check(watch) == []
    deliver(restarted)
    assert len(mails(smtp, "[credmail] Problema: il limite orario globale")) == 2
    assert len(mails(smtp, "[credmail] Risolto: il limite orario globale")) == 1


def test_a_slot_taken_by_another_process_leaves_the_transaction_usable(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """The loser of a race meets the unique key inside a savepoint: it queues nothing for
    the slot, and what else its transaction did still commits."""
    clock = Clock(TUESDAY_0750)
    first = notify_app(dovecot, smtp, db_url, clock)
    second = notify_app(dovecot, smtp, db_url, clock)
    with first.uow() as uow:
        assert uow.notices.take_slot("digest", "2026-12-08 07:45", clock.now, 2)
        uow.commit()
    with second.uow() as uow:
        assert not uow.notices.take_slot("digest", "2026-12-08 07:45", clock.now, 2)
        assert uow.notices.take_slot("digest", "2026-12-08 13:00", clock.now, 0)
        uow.commit()
    with second.uow(read_only=True) as uow:
        slots = uow.session.scalars(select(NotificationRow.slot).order_by(NotificationRow.id))
        assert list(slots) == ["2026-12-08 07:45", "2026-12-08 13:00"]


def test_a_missing_watched_folder_is_one_alert_not_also_a_mailbox_down(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str
) -> None:
    """The watcher's missing folder (what the unit's STATUS= line says) is the state; the
    stale sync it causes is not announced a second time as a mailbox that is down."""
    clock = Clock(TUESDAY_0750)
    app = notify_app(dovecot, smtp, sqlite_url, clock, mailbox__folder="Richieste")
    stop = threading.Event()
    watcher = InboxWatcher(
        app.pipeline, app.source_factory(), stop, Heartbeat(environ={}), slow_retry_seconds=0.2
    )
    watch = Watch(clock.now - timedelta(hours=1), lambda: watcher.missing)
    thread = threading.Thread(target=watcher.run)
    thread.start()
    try:
        assert wait_for(lambda: watcher.missing is not None, 10)
        assert app.alerts.check(watch) == ["folder_missing"]
        with dovecot.client() as client:  # the sysadmin creates the folder
            client.create_folder("Richieste")
        assert wait_for(lambda: watcher.missing is None, 10)
        assert app.alerts.check(watch) == ["folder_missing"]  # ended
    finally:
        stop.set()
        thread.join(10)
    deliver(app)
    subjects = [str(m["Subject"]) for m in smtp.handler.parsed()]
    assert subjects == [
        "[credmail] Problema: la cartella sorvegliata non esiste nella casella - Istituto Stanga",
        "[credmail] Risolto: la cartella sorvegliata non esiste nella casella - Istituto Stanga",
    ]


def test_a_bounced_digest_asks_to_check_the_notify_addresses(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """Not "the family has no link": a staff address in [notify] is wrong."""
    clock = Clock(TUESDAY_0750)
    app = notify_app(dovecot, smtp, db_url, clock, notify__staff='["ex.segreteria@example.org"]')
    dovecot.append(request("sconosciuto@example.net"))
    sync_inbox(app)
    assert app.digest.run_due() == 1
    deliver(app)
    (digest,) = smtp.handler.parsed()
    dovecot.append(dsn_postfix(str(digest["Message-ID"]), to="ex.segreteria@example.org"))
    sync_inbox(app)
    (item,) = [i for i in app.review.pending() if i.reasons != ("unknown_sender",)]
    assert item.reasons == ("notify_bounced",)
    assert reason_label("notify_bounced").endswith("sezione [notify] della configurazione")


def test_delivery_paused_and_campaign_bounces_begin_and_end(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """A campaign to 30 families, of whose mails 10 bounce (over the 10 % share, once 20
    are delivered); a pause on the SMTP settings, then `outbox retry`."""
    year = school_year(30, 70)
    clock = Clock(datetime.now(UTC))
    app = notify_app(dovecot, smtp, db_url, clock, campaign__batch_size="50")
    school(app, year)
    app.desks.campaign.start("settembre", None, ACTOR)
    run_until_done(app, "settembre")
    watch = Watch(clock.now)
    sync_inbox(app)
    assert app.alerts.check(watch) == []
    for n, msg in enumerate(campaign_mails(smtp)[:10]):
        dsn = dsn_postfix(str(msg["Message-ID"]), to=str(msg["To"]))
        dovecot.append(
            re.sub(rb"(?im)^Message-ID: <[^>]+>", f"Message-ID: <b{n}@mx>".encode(), dsn, count=1)
        )
    sync_inbox(app)
    assert app.alerts.check(watch) == ["campaign_bounces"]
    with app.uow() as uow:
        uow.outbox.pause(clock.now, "SMTPAuthenticationError: 535 5.7.8 refused")
        uow.commit()
    assert app.alerts.check(watch) == ["delivery"]
    app.desks.outbox.retry(None, ACTOR)  # `credmail outbox retry`
    assert app.alerts.check(watch) == ["delivery"]  # ended
    deliver(app)
    subjects = [str(m["Subject"]) for m in smtp.handler.parsed()]
    assert [s.removesuffix(" - Istituto Stanga") for s in subjects if "[credmail]" in s] == [
        "[credmail] Problema: troppe e-mail dell'invio di settembre sono respinte",
        "[credmail] Problema: l'invio della posta è fermo o in ritardo",
        "[credmail] Risolto: l'invio della posta è fermo o in ritardo",
    ]
    (bounces,) = [m for m in smtp.handler.parsed() if "respinte" in str(m["Subject"])]
    detail = r"Dettagli tecnici: settembre: \d+ of 111 delivered \(address, student\)"
    assert re.search(detail, body_text(bounces))


def test_a_sign_in_needing_a_person_is_the_alert_not_the_stale_mailbox(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """The OAuth2 state `credmail status` prints: needs_reauth begins it, ok ends it."""
    clock = Clock(TUESDAY_0750)
    oauth = {
        "mailbox__auth": "oauth2",
        "smtp__auth": "oauth2",
        "oauth__provider": "microsoft",
        "oauth__tenant_id": "school-tenant",
        "oauth__client_id": "credmail-app",
        "oauth__client_secret": "app-secret-value",
    }
    app = notify_app(dovecot, smtp, db_url, clock, **oauth)
    watch = Watch(clock.now - timedelta(hours=2))  # no sync for two hours: signed out
    store = OAuthStore(app.engine)
    store.record("needs_reauth", "the refresh token expired", "run `credmail oauth login`")
    assert app.alerts.check(watch) == ["sign_in"]
    store.record("ok")
    assert app.alerts.check(watch) == ["sign_in", "mailbox_down"]  # now the mailbox's turn
    with app.uow(read_only=True) as uow:
        queued = [
            message_from_bytes(e.raw or b"", policy=policy.default)
            for e in uow.outbox.listing(None)
        ]
    assert [str(m["Subject"]).split(": ", 1)[1] for m in queued] == [
        "l'accesso OAuth2 a Microsoft 365 / Google va autorizzato di nuovo - Istituto Stanga",
        "l'accesso OAuth2 a Microsoft 365 / Google va autorizzato di nuovo - Istituto Stanga",
        "la casella della segreteria non risponde - Istituto Stanga",
    ]
    assert "Dettagli tecnici: the refresh token expired; run `credmail oauth login`" in (
        mail_text(queued[0]).replace("\r\n", "\n")
    )
