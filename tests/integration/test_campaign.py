"""The September campaign on real aiosmtpd, Dovecot, SQLite and PostgreSQL: the plan of
1,800 new students and 1,500 guardians, a paced campaign sending each (address, student)
link exactly once while requests' replies overtake it, DSNs in three providers' formats
opening "indirizzo non valido" review items, and the lifecycle commands."""

from __future__ import annotations

import csv
import re
import threading
import time
from collections import defaultdict
from datetime import date, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from credmail.adapters.db.directory_import import import_records
from credmail.bootstrap import App
from credmail.core.campaign import PURPOSE_FIRST_ACCESS, Warn
from credmail.entrypoints.cli import main
from credmail.service.directory_csv import read_directory
from credmail.service.links import check_token
from credmail.service.review import Actor
from tests.e2e.test_crash import request
from tests.support import provider_mail as pm
from tests.support.campaign_data import SchoolYear, school_year
from tests.support.servers import Dovecot, RecordingHandler, SmtpServer
from tests.support.wiring import body_text, make_app, server_env, server_settings, write_config

pytestmark = pytest.mark.integration

TEACHERS = "".join(
    f"teacher,T{i:04d},Doc{i},Ente{i},,docente{i}@example.org,,,\n" for i in range(5)
)
CODE = re.compile(  # the code, the sentence before the link (one or two lines), the link
    r"CODICE STUDENTE \(il nome utente\): (\S+)\r?\n(?:[^\n]*\r?\n){1,2}?(https?://\S+|@@\S+@@)"
)
ACTOR = Actor("test", "cli")


class ArrivalHandler(RecordingHandler):
    """Notes when each message arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.arrivals.append(time.monotonic())
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def arrivals_smtp() -> Any:
    server = SmtpServer(handler=ArrivalHandler()).start()
    yield server
    server.stop()


def school(app: App, year: SchoolYear, extra: str = TEACHERS) -> None:
    with app.uow() as uow:
        import_records(uow.session, read_directory(year.csv(date.today(), extra)), prune=False)
        uow.commit()


def campaign_mails(smtp: SmtpServer) -> list[EmailMessage]:
    return [m for m in smtp.handler.parsed() if "primo accesso" in str(m["Subject"]).lower()]


def links_by_pair(smtp: SmtpServer) -> dict[tuple[str, str], set[str]]:
    """(recipient, student) -> the distinct Message-IDs that carried its link."""
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for msg in campaign_mails(smtp):
        for student, _link in CODE.findall(body_text(msg)):
            found[(str(msg["To"]).lower(), student)].add(str(msg["Message-ID"]))
    return found


def run_until_done(app: App, name: str, timeout: float = 400) -> None:
    """The daemon's outbox worker (topping the campaign up after each drain) and its
    ticks, in threads, until every pair has left."""
    worker = app.outbox_worker
    worker.refill = app.campaigns.top_up
    worker.stop.clear()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            app.campaigns.top_up()  # the daemon's tick
            worker.nudge()
            with app.uow(read_only=True) as uow:
                info = uow.campaigns.get(name)
            if info is not None and info.status == "done":
                return
            time.sleep(0.5)
        raise AssertionError(f"campaign not done: {app.desks.campaign.status(name)}")
    finally:
        worker.stop.set()
        worker.nudge()
        thread.join(timeout=10)


def test_the_plan_of_1800_new_students_and_1500_guardians(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    year = school_year(750, 1800)
    assert (year.new_students, year.guardians) == (1800, 1500)
    app = make_app(
        server_settings(
            dovecot, smtp, db_url, smtp__max_per_minute="30", campaign__daily_cap="2000"
        ),
        directory=False,
    )
    school(app, year)
    view = app.desks.campaign.plan()
    plan = view.plan
    pairs = {(key, s) for mail in plan.mails for key, s in mail.pairs()}
    assert pairs == year.expected_pairs()
    assert len(plan.mails) == year.expected_mails()
    assert plan.new_students == 1800
    counts = plan.warning_counts()
    assert counts[Warn.ADULT] == len(year.adults)
    assert counts[Warn.NO_GUARDIAN] == len(year.orphans)
    assert counts[Warn.SHARED_ADDRESS] == len(set(year.shared_across))
    assert counts[Warn.GUARDIAN_NO_ADDRESS] > 0 and counts[Warn.UNREACHABLE] > 0
    # 30 a minute: every mail takes 2 s
    assert view.duration == timedelta(seconds=2 * len(plan.mails))

    config = write_config(tmp_path / "credmail.toml", server_env(dovecot, smtp, db_url))
    sheet = tmp_path / "plan.csv"
    command = ["--config", str(config), "campaign", "plan", "settembre", "--csv", str(sheet)]
    assert main(command) == 0
    with sheet.open(encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    assert rows[0][:2] == ["indirizzo", "studente"]
    links = {(row[0], row[1]) for row in rows[1:] if row[0] and row[1]}
    assert links == pairs  # one row a link; a warning row lacks the address or the student
    shared = [row for row in rows[1:] if row[0] and not row[1]]
    assert {row[0] for row in shared} == set(year.shared_across)
    assert all(row[4].startswith("indirizzo") for row in shared), shared[:1]
    with app.uow(read_only=True) as uow:  # a dry run stores nothing
        assert uow.campaigns.get("settembre") is None
        assert uow.outbox.counts() == {}


def test_a_paced_campaign_sends_each_link_once_and_replies_go_first(
    dovecot: Dovecot,
    arrivals_smtp: SmtpServer,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    year = school_year(750, 1800)
    settings = server_settings(
        dovecot,
        arrivals_smtp,
        db_url,
        smtp__max_per_second="250",  # the provider's pace, compressed for the test
        campaign__daily_cap="5000",
        campaign__batch_size="20",
        limits__global_replies_per_hour="3",  # campaign mail must not trip the breaker
        limits__sender_replies_per_day="2",  # nor count against an address's replies
    )
    app = make_app(settings, directory=False)
    school(app, year)
    started = app.desks.campaign.start("settembre", None, ACTOR)
    assert started.created and started.pairs_added == len(year.expected_pairs())
    again = app.desks.campaign.start("settembre", None, ACTOR)
    assert not again.created and again.pairs_added == 0

    latencies: list[float] = []
    overtaken: list[int] = []
    handler = arrivals_smtp.handler
    assert isinstance(handler, ArrivalHandler)

    def ask_during_campaign() -> None:
        source = app.source_factory()
        try:
            for i in range(3):
                while len(handler.messages) < 200 * (i + 1):
                    time.sleep(0.01)
                asked_at = time.monotonic()
                dovecot.append(request(i))
                app.pipeline.sync(source)
                before = len(handler.messages)  # the reply is in the outbox now
                while not any(to == [f"docente{i}@example.org"] for _f, to, _r in handler.messages):
                    time.sleep(0.005)
                position = next(
                    n
                    for n, (_f, to, _r) in enumerate(handler.messages)
                    if to == [f"docente{i}@example.org"]
                )
                latencies.append(handler.arrivals[position] - asked_at)
                overtaken.append(position - before)
        finally:
            source.close()

    asker = threading.Thread(target=ask_during_campaign, daemon=True)
    asker.start()
    run_until_done(app, "settembre")
    asker.join(timeout=30)

    found = links_by_pair(arrivals_smtp)
    assert set(found) == year.expected_pairs()
    assert all(len(ids) == 1 for ids in found.values())  # one distinct Message-ID each
    assert len({i for ids in found.values() for i in ids}) == year.expected_mails()
    assert len(campaign_mails(arrivals_smtp)) == year.expected_mails()  # no resend at all
    assert len(latencies) == 3
    assert all(n <= 3 for n in overtaken), overtaken  # at most the mail already under way
    with app.uow(read_only=True) as uow:
        assert not uow.breaker.tripped()
    status = app.desks.campaign.status("settembre")
    assert status.counts == {"sent": len(year.expected_pairs())}
    with capsys.disabled():
        print(
            f"\ncampaign ({db_url.split(':')[0]}): {year.expected_mails()} mails; replies "
            f"during it: latency {', '.join(f'{s * 1000:.0f} ms' for s in latencies)}, "
            f"campaign mails sent between queueing and the reply: {overtaken}"
        )


def test_dsns_in_three_formats_open_one_review_item_per_bounced_address(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    year = school_year(30, 70)
    settings = server_settings(dovecot, smtp, db_url, campaign__batch_size="50")
    app = make_app(settings, directory=False)
    school(app, year)
    app.desks.campaign.start("settembre", None, ACTOR)
    run_until_done(app, "settembre")
    mails = campaign_mails(smtp)[:20]
    formats = (pm.dsn_postfix, pm.dsn_exchange, pm.dsn_gmail)
    bounced_pairs = 0
    for n, msg in enumerate(mails):
        dsn = formats[n % 3](str(msg["Message-ID"]), to=str(msg["To"]))
        own_id = f"Message-ID: <dsn{n}@mx.example>".encode()
        dsn = re.sub(rb"(?im)^Message-ID: <[^>]+>", own_id, dsn, count=1)
        dovecot.append(dsn)
        assert CODE.findall(body_text(msg)), body_text(msg)
        bounced_pairs += len(CODE.findall(body_text(msg)))
    source = app.source_factory()
    try:
        app.pipeline.sync(source)
        dovecot.append(pm.dsn_gmail(str(mails[0]["Message-ID"]), to=str(mails[0]["To"])))
        app.pipeline.sync(source)  # a repeated report changes nothing
    finally:
        source.close()
    items = [i for i in app.desks.review.pending() if "campaign_bounced" in i.reasons]
    assert len(items) == 20
    for item, msg in zip(sorted(items, key=lambda i: i.id), mails, strict=True):
        assert item.subject.startswith(f"Indirizzo non valido: {msg['To']}")
        for student, _link in CODE.findall(body_text(msg)):
            assert student in item.subject
    assert len(dovecot.folder_messages("Credenziali/Scartate")) == 21
    assert app.desks.campaign.status("settembre").counts["bounced"] == bounced_pairs


def test_links_are_per_address_last_the_campaign_ttl_and_are_valid(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    year = school_year(5, 11, orphans=0)
    settings = server_settings(
        dovecot, smtp, db_url, links__max_ttl_minutes="60", campaign__link_ttl_days="14"
    )
    app = make_app(settings, directory=False)
    school(app, year)
    app.desks.campaign.start("settembre", None, ACTOR)
    run_until_done(app, "settembre")
    links: dict[str, list[str]] = defaultdict(list)
    for msg in campaign_mails(smtp):
        for student, link in CODE.findall(body_text(msg)):
            links[student].append(link)
        assert "scade il" in body_text(msg) and "SPID" in body_text(msg)
        assert msg["Auto-Submitted"] == "auto-generated"
    two_addresses = [s for s, found in links.items() if len(found) == 2]
    assert two_addresses  # both guardians' links stay valid: one link per address
    now = app.clock()
    with app.uow(read_only=True) as uow:
        for student in two_addresses:
            for link in links[student]:
                status = check_token(uow, link, now)
                assert status.valid and status.purpose == PURPOSE_FIRST_ACCESS, status
                assert status.expires_at is not None
                assert timedelta(days=13, hours=23) < status.expires_at - now <= timedelta(days=14)


def test_extend_sends_only_the_new_students_and_pause_cancel_withdraw(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, tmp_path: Path
) -> None:
    year = school_year(10, 24, orphans=0)
    settings = server_settings(dovecot, smtp, db_url, campaign__batch_size="3")
    app = make_app(settings, directory=False)
    school(app, year)
    app.desks.campaign.start("settembre", None, ACTOR)
    run_until_done(app, "settembre")
    sent_before = len(campaign_mails(smtp))
    late = "student,S9000001,Nuovo,Arrivato,2014-01-01,,,1C,sì\n"
    late += "guardian,G9000001,Gen,Arrivato,,tardi@example.org,S9000001,,\n"
    school(app, year, TEACHERS + late)
    assert app.desks.campaign.extend("settembre", ACTOR) == 1
    assert app.desks.campaign.extend("settembre", ACTOR) == 0
    run_until_done(app, "settembre")
    new = campaign_mails(smtp)[sent_before:]
    assert [str(m["To"]) for m in new] == ["tardi@example.org"]

    # a second campaign: paused with mail in the outbox, that mail goes back to planned
    later = "".join(
        f"student,S900001{i},Nuovo{i},Dopo,2014-01-01,,,1C,sì\n"
        f"guardian,G900001{i},Gen{i},Dopo,,dopo{i}@example.org,S900001{i},,\n"
        for i in range(2)
    )
    school(app, year, TEACHERS + late + later)
    all_pairs = len(year.expected_pairs()) + 3
    app.desks.campaign.start("recupero", None, ACTOR)
    assert app.campaigns.top_up() == 3
    assert app.desks.campaign.pause("recupero", ACTOR) >= 3  # links of the 3 mails
    assert app.campaigns.top_up() == 0
    assert app.desks.campaign.status("recupero").counts == {"planned": all_pairs}
    app.desks.campaign.resume("recupero", ACTOR)
    assert app.campaigns.top_up() == 3
    cancelled = app.desks.campaign.cancel("recupero", ACTOR)
    assert cancelled == all_pairs
    with app.uow(read_only=True) as uow:
        assert uow.outbox.counts().get("pending", 0) == 0

    config = write_config(tmp_path / "credmail.toml", server_env(dovecot, smtp, db_url))
    sheet = tmp_path / "report.csv"
    command = ["--config", str(config), "campaign", "report", "settembre", "--csv", str(sheet)]
    assert main(command) == 0
    with sheet.open(encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle, delimiter=";"))
    assert len(rows) == 1 + len(year.expected_pairs()) + 1
    assert {row[3] for row in rows[1:]} == {"inviata"}  # the states in Italian
    assert main(["--config", str(config), "campaign", "status", "recupero"]) == 0
    assert main(["--config", str(config), "campaign", "status", "nessuna"]) == 1


def test_a_romanian_guardian_gets_italian_then_romanian_with_the_code_and_a_working_link(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """Issue 19 for the September mailing: the guardians' `language` from the directory;
    one address shared by guardians with two languages gets both, in the replies' order."""
    minor = date(date.today().year - 12, 3, 15).isoformat()
    sheet = (
        "role,username,first_name,last_name,birth_date,emails,students,class,new,language\n"
        f"student,S7000001,Ioana,Popescu,{minor},,,1A,sì,\n"
        "guardian,G7000001,Maria,Popescu,,popescu@example.org,S7000001,,,ro\n"
        f"student,S7000002,Amir,Haddad,{minor},,,1A,sì,\n"
        f"student,S7000003,Lina,Haddad,{minor},,,1B,sì,\n"
        "guardian,G7000002,Karim,Haddad,,haddad@example.org,S7000002;S7000003,,,ar\n"
        "guardian,G7000003,Elena,Haddad,,haddad@example.org,S7000002;S7000003,,,ro\n"
        f"student,S7000004,Luca,Bianchi,{minor},,,1C,sì,\n"
        "guardian,G7000004,Anna,Bianchi,,bianchi@example.org,S7000004,,,\n"
    )
    app = make_app(server_settings(dovecot, smtp, db_url), directory=False)
    with app.uow() as uow:
        import_records(uow.session, read_directory(sheet.encode()), prune=False)
        uow.commit()
    app.desks.campaign.start("settembre", None, ACTOR)
    run_until_done(app, "settembre")
    mails = {str(m["To"]): m for m in campaign_mails(smtp)}
    assert set(mails) == {"popescu@example.org", "haddad@example.org", "bianchi@example.org"}

    popescu = mails["popescu@example.org"]
    assert popescu["Content-Language"] == "it, ro"
    assert popescu["Subject"].startswith("Registro Elettronico: primo accesso")
    text = body_text(popescu).replace("\r\n", "\n")  # as it came off the wire
    assert "@@" not in text
    assert text.startswith("[ro] Textul în limba română se află mai jos")
    italian_at = text.index("======== Italiano (it) ========")
    romanian_at = text.index("======== Română (ro) ========")
    assert italian_at < romanian_at
    italian, romanian = text[italian_at:romanian_at], text[romanian_at:]
    [(code, link)] = CODE.findall(italian)
    assert code == "S7000001"
    assert "\nIoana Popescu\nCODICE STUDENTE (il nome utente): S7000001\n" in italian
    assert " alle " in italian and "Gentile Maria Popescu," in italian  # the guardian, by name
    assert romanian.startswith("======== Română (ro) ========\n\nRegistrul Electronic: primul")
    assert "Maria Popescu" in romanian.split("\n")[4]  # greeted by name in Romanian too
    assert "\nIoana Popescu\nCODUL DE ELEV (numele de utilizator): S7000001\n" in romanian
    assert f"(„Conferma”):\n{link}\n" in romanian  # the same link, filled, alone on its line
    expiry = re.search(r"expiră la (\d\d/\d\d/\d{4} \d\d:\d\d)\.", romanian)
    assert expiry and f"scade il {expiry.group(1).replace(' ', ' alle ')}." in italian
    assert "Secretariatul" in romanian
    now = app.clock()
    with app.uow(read_only=True) as uow:
        status = check_token(uow, link, now)
        assert status.valid and status.purpose == PURPOSE_FIRST_ACCESS, status

    haddad = mails["haddad@example.org"]
    assert haddad["Content-Language"] == "it, ar, ro"  # G7000002 (ar) before G7000003 (ro)
    text = body_text(haddad).replace("\r\n", "\n")
    lines = text.split("\n")
    found = dict(CODE.findall(text))
    assert set(found) == {"S7000002", "S7000003"}
    for link in found.values():
        assert lines.count(link) == 3  # bare on its line in Italian, Arabic and Romanian
    assert text.index("العربية (ar)") < text.index("Română (ro)")
    words = " ".join(text.split())
    assert "per ciascuno dei Suoi figli" in words and "pentru fiecare dintre copiii" in words

    bianchi = mails["bianchi@example.org"]  # no language on file: Italian only, as before
    assert bianchi["Content-Language"] == "it"
    assert body_text(bianchi).startswith("Gentile Anna Bianchi,")  # the one guardian there
