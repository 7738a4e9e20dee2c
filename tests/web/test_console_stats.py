"""Statistiche (administrators) and `credmail stats`, on SQLite and PostgreSQL: numbers
checked against rows the test writes (weeks cut at Monday midnight in Rome, durations
bucketed by the database), the CSV files, the role check, no script on the page."""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session

from credmail.adapters.db.models import (
    CampaignRecipientRow,
    CampaignRow,
    LedgerRow,
    OutboxRow,
    RegisterTaskRow,
    ReviewRow,
)
from credmail.bootstrap import App
from credmail.config import load_settings
from credmail.entrypoints.cli import main
from credmail.service.desks import Actor, DeskError
from credmail.service.review import NotPermitted
from credmail.service.stats import weeks_until
from tests.fakes import FakeClock
from tests.support.wiring import make_app, write_config
from tests.web.conftest import CLI, PASSWORD, ROOT, ClientFactory, sign_in, web_env

pytestmark = pytest.mark.integration  # real databases

NOW = datetime(2026, 12, 9, 9, 0, tzinfo=UTC)  # Wednesday, 10:00 in Rome
HOUR = timedelta(hours=1)
_keys = itertools.count(1)


def _ledger(s: Session, at: datetime, outcome: str) -> int:
    row = LedgerRow(
        folder="INBOX", validity=1, source_key=str(next(_keys)), handled_at=at, outcome=outcome
    )
    row.reasons = []
    s.add(row)
    s.flush()
    return row.id


def _mail(s: Session, created: datetime, sent: datetime | None, **links: object) -> None:
    s.add(
        OutboxRow(
            message_id=str(links.pop("message_id", f"<m{next(_keys)}@test>")),
            template=str(links.pop("template", "link_adult")),
            purpose=links.pop("purpose", "adult_reset"),
            envelope_from="segreteria@istitutostanga.edu.it",
            status="sent" if sent else "pending",
            attempts=1,
            created_at=created,
            next_attempt_at=created,
            sent_at=sent,
            **links,
        )
    )


def _review(s: Session, created: datetime, status: str) -> int:
    row = ReviewRow(created_at=created, status=status, kind="adult", subject="x", reasons=[])
    s.add(row)
    s.flush()
    return row.id


def _task(s: Session, requested: datetime, confirmed: datetime, done: datetime | None) -> None:
    s.add(
        RegisterTaskRow(
            selector=f"sel{next(_keys)}",
            username="T3001",
            purpose="adult_reset",
            role="teacher",
            first_name="Giovanna",
            last_name="Esposito",
            requested_at=requested,
            confirmed_at=confirmed,
            status="done" if done else "open",
            done_at=done,
        )
    )


def write_a_term(app: App, now: datetime = NOW) -> None:
    """The rows the expectations below are worked out from (around `now`)."""
    monday = weeks_until(now, ZoneInfo("Europe/Rome"), 1)[0].begins.astimezone(UTC)
    with app.uow() as uow:
        s = uow.session
        # this week (from Monday 00:00 in Rome, 23:00 UTC on Sunday)
        first = _ledger(s, monday + timedelta(minutes=30), "answered")
        _mail(s, monday, monday + timedelta(minutes=30, seconds=40), ledger_id=first)
        second = _ledger(s, now - 3 * HOUR, "answered")
        _mail(s, now - 3 * HOUR, now - HOUR, ledger_id=second)  # 2 hours
        _mail(s, now - 3 * HOUR, None, ledger_id=second)  # not sent yet: no time
        _mail(s, now, now, ledger_id=second, purpose=None, template="minor_procedure")
        _ledger(s, now - 24 * HOUR, "review")
        # last week: Sunday 23:30 in Rome is still last week
        _ledger(s, monday - timedelta(minutes=30), "automated")
        _ledger(s, now - 6 * 24 * HOUR, "errors")
        _ledger(s, now - 6 * 24 * HOUR, "ignored")  # ordinary mail: not a request
        _ledger(s, now - 20 * 7 * 24 * HOUR, "answered")  # in 26 weeks, not in 13
        # a link after a review: held 2 days before it left
        approved = _review(s, now - 49 * HOUR, "approved")
        _mail(s, now - HOUR, now - HOUR, review_id=approved)
        # what waits
        _review(s, now - 50 * HOUR, "pending")
        _review(s, now - HOUR, "pending")
        _task(s, now - 30 * 24 * HOUR, now - 20 * 24 * HOUR, None)
        # a register task: link 10 days ago, confirmed 6 hours ago, done an hour ago
        _task(s, now - 240 * HOUR, now - 6 * HOUR, now - HOUR)
        # a campaign: 2 to send, 1 bounced, 1 sent
        campaign = CampaignRow(
            name="settembre", status="running", created_at=now - 48 * HOUR, start_at=now - 47 * HOUR
        )
        s.add(campaign)
        s.flush()
        states = ["planned", "planned", "bounced", "queued"]
        for n, state in enumerate(states):
            s.add(
                CampaignRecipientRow(
                    campaign_id=campaign.id,
                    address=f"g{n}@example.org",
                    address_key=f"g{n}@example.org",
                    student=f"S{n}",
                    guardians=[f"G{n}"],
                    state=state,
                    message_id="<camp@test>" if state == "queued" else None,
                    created_at=now - 47 * HOUR,
                )
            )
        campaign_mail = {
            "message_id": "<camp@test>",
            "purpose": None,
            "template": "campaign_new_student",
        }
        _mail(s, now - 47 * HOUR, now - 46 * HOUR, **campaign_mail)
        uow.commit()


@pytest.fixture
def stats_app(db_url: str, tmp_path: Path) -> App:
    env = web_env(db_url, console__totp_key_file=str(tmp_path / "totp.key"))
    app = make_app(load_settings(None, environ=env), clock=FakeClock(NOW))
    app.desks.staff.add("anna", "amministratore", PASSWORD, CLI)
    app.desks.staff.add("olga", "operatore", PASSWORD, CLI)
    write_a_term(app)
    return app


def _csv(text: str) -> list[list[str]]:
    assert text.startswith("\ufeff")
    return list(csv.reader(io.StringIO(text[1:]), delimiter=";"))


def test_the_page_counts_what_the_database_holds(stats_app: App, client_for: ClientFactory) -> None:
    client = client_for(stats_app)
    sign_in(client, "anna")
    page = client.get(f"{ROOT}/statistiche")
    assert page.status_code == 200, page.text[:500]
    assert "script-src 'none'" in page.headers["content-security-policy"]
    assert "<script" not in page.text and " style=" not in page.text
    assert page.text.count('<svg xmlns="http://www.w3.org/2000/svg"') == 5
    assert "Dal 30 settembre 2026" not in page.text and "Dal 14 settembre 2026 a oggi" in page.text
    this_week = '<th scope="row">Dal 07/12/2026 al 13/12/2026</th><td>2</td><td>1</td><td>0</td>'
    assert this_week in page.text

    rows = _csv(client.get(f"{ROOT}/statistiche/richieste.csv").text)
    assert rows[0][:3] == ["settimana", "risposta automatica", "messa in revisione"]
    assert len(rows) == 1 + 13
    assert rows[-1] == ["dal 07/12/2026 al 13/12/2026", "2", "1", "0", "0", "3"]
    assert rows[-2] == ["dal 30/11/2026 al 06/12/2026", "0", "0", "1", "1", "2"]
    assert sum(int(r[-1]) for r in rows[1:]) == 5  # the one 20 weeks ago is outside

    longer = _csv(client.get(f"{ROOT}/statistiche/richieste.csv?settimane=26").text)
    assert sum(int(r[-1]) for r in longer[1:]) == 6

    times = {r[0]: r[1:] for r in _csv(client.get(f"{ROOT}/statistiche/tempi.csv").text)}
    #                   1 min, 1 h, 8 h, 1 d, 3 d, 7 d, more, total, half within
    assert times["collegamento automatico"] == ["1", "0", "1", "0", "0", "0", "0", "2", "1 minuto"]
    assert times["collegamento dopo la revisione"][4] == "1"
    assert times["attività nel registro"][6:] == ["1", "1", "oltre 7 giorni"]
    tasks = _csv(client.get(f"{ROOT}/statistiche/registro.csv").text)
    assert tasks[1] == ["eseguite nel periodo", "0", "0", "1", "0", "0", "0", "0", "1", "8 ore"]

    waiting = {r[0]: r[1:] for r in _csv(client.get(f"{ROOT}/statistiche/attese.csv").text)}
    assert waiting["richieste da rivedere"] == [
        "1",
        "1",
        "0",
        "0",
        "0",
        "2",
        "7 dicembre 2026 alle 08:00",
    ]
    assert waiting["attività da fare nel registro"][4:6] == ["1", "1"]

    campaigns = _csv(client.get(f"{ROOT}/statistiche/campagne.csv").text)
    assert campaigns[1][:9] == ["settembre", "2", "0", "1", "0", "1", "0", "0", "4"]
    assert campaigns[1][9:] == ["in corso", "7 dicembre 2026 alle 11:00", "50%"]
    answer = client.get(f"{ROOT}/statistiche/nessuna.csv")
    assert answer.status_code == 409


def test_only_administrators_see_the_statistics(stats_app: App, client_for: ClientFactory) -> None:
    client = client_for(stats_app, "203.0.113.8")
    sign_in(client, "olga")
    assert "Statistiche" not in client.get(f"{ROOT}/").text
    for path in ("/statistiche", "/statistiche/richieste.csv"):
        assert client.get(ROOT + path).status_code == 403, path
    with pytest.raises(NotPermitted):
        stats_app.desks.stats.report(13, Actor("olga", "web", "operatore"))
    with pytest.raises(DeskError):
        stats_app.desks.stats.report(0, CLI)


def test_credmail_stats_prints_the_same_figures(
    stats_app: App,
    db_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in list(os.environ):
        if name.startswith("CREDMAIL_"):
            monkeypatch.delenv(name)
    config = write_config(tmp_path / "credmail.toml", web_env(db_url))
    assert main(["--config", str(config), "stats", "--weeks", "26", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    weeks = figures["weeks"]
    assert len(weeks) == 26  # the real clock: the current week last
    assert sum(w["answered"] for w in weeks) >= 0
    assert main(["--config", str(config), "stats", "--weeks", "0"]) == 1
    assert "weeks must be between 1 and 104" in capsys.readouterr().err

    report = stats_app.desks.stats.report(26, CLI)
    from credmail.entrypoints.cli_stats import as_json, table_lines

    shown = as_json(report)
    assert shown["weeks"][-1] == {
        "monday": "2026-12-07",
        "answered": 2,
        "review": 1,
        "automated": 0,
        "errors": 0,
    }
    assert sum(w["answered"] for w in shown["weeks"]) == 3
    assert shown["time_to_link"]["reviewed"][4] == {"under_seconds": 259200, "count": 1}
    assert shown["waiting"]["review"]["oldest"] == "2026-12-07T07:00:00+00:00"
    assert shown["campaigns"][0]["counts"]["bounced"] == 1
    lines = table_lines(stats_app.desks.stats.charts(report)[0])
    assert lines[0] == "Richieste per settimana, per esito"
    assert lines[-1].split() == ["dal", "07/12/2026", "al", "13/12/2026", "2", "1", "0", "0", "3"]
