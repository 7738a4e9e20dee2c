"""Invio di settembre in the console, on SQLite and PostgreSQL: the plan with its warnings
and one family's mail, start (after a confirmation, now or at a date), pause, resume,
extend, cancel (after a confirmation) change the campaign exactly as `credmail campaign`
does, with the same audit entries; the bounces as review items; administrators only; CSRF."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from credmail.adapters.db.directory_import import import_records
from credmail.bootstrap import App
from credmail.config import load_settings
from credmail.core.values import MarkBounced
from credmail.entrypoints.cli import main
from credmail.service.bounces import record_bounce
from credmail.service.desks import Actor
from credmail.service.directory_csv import read_directory
from credmail.service.ports import AuditFilter
from credmail.service.review import NotPermitted
from tests.fakes import FakeClock
from tests.support.campaign_data import SchoolYear, school_year
from tests.support.wiring import make_app, write_config
from tests.web.conftest import CLI, PASSWORD, ROOT, ClientFactory, sign_in, web_env

pytestmark = pytest.mark.integration  # real databases

NOW = datetime(2026, 9, 1, 6, 0, tzinfo=UTC)
PLACEHOLDER = "[collegamento personale, creato all&#39;invio]"


def school(app: App, year: SchoolYear, extra: str = "") -> None:
    with app.uow() as uow:
        import_records(uow.session, read_directory(year.csv(NOW.date(), extra)), prune=False)
        uow.commit()


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    return web_env(
        db_url, console__totp_key_file=str(tmp_path / "totp.key"), campaign__batch_size="3"
    )


@pytest.fixture
def mailing(env: dict[str, str]) -> tuple[App, SchoolYear]:
    app = make_app(load_settings(None, environ=env), clock=FakeClock(NOW), directory=False)
    app.desks.staff.add("anna", "amministratore", PASSWORD, CLI)
    app.desks.staff.add("olga", "operatore", PASSWORD, CLI)
    year = school_year(12, 28, orphans=1)
    school(app, year)
    return app, year


def _cli(env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    for name in list(os.environ):
        if name.startswith("CREDMAIL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SUDO_USER", "root")
    config = write_config(tmp_path / "credmail.toml", env)
    assert main(["--config", str(config), "campaign", *args]) == 0


def _post(client: TestClient, csrf: str, path: str, **data: str) -> str:
    answer = client.post(ROOT + path, data={"csrf_token": csrf, **data})
    assert answer.status_code == 303, answer.text[:800]
    return str(answer.headers["location"])


def _state(app: App, name: str) -> tuple[str, dict[str, int], list[tuple[str, str, str]]]:
    status = app.desks.campaign.status(name)
    pairs = [(p.address_key, p.student, p.state) for p in app.desks.campaign.report(name)]
    return status.campaign.status, status.counts, pairs


def _audit(app: App, name: str) -> list[tuple[str, str | None, str]]:
    entries, _ = app.desks.audit.listing(AuditFilter(item=f"invio {name}"), 100)
    return [(e.action, e.detail, e.source) for e in reversed(entries)]


def test_the_page_shows_the_plan_its_warnings_and_one_familys_mail(
    mailing: tuple[App, SchoolYear], client_for: ClientFactory
) -> None:
    app, year = mailing
    client = client_for(app)
    sign_in(client, "anna")
    page = client.get(f"{ROOT}/invio")
    assert page.status_code == 200, page.text[:800]
    assert "<script" not in page.text
    plan = app.desks.campaign.plan().plan
    assert f"<dt>E-mail</dt><dd>{len(plan.mails)} ({plan.links} collegamenti)</dd>" in page.text
    assert "Nuovo studente senza genitori/tutori in rubrica: nessuna e-mail" in page.text
    assert PLACEHOLDER in page.text and "Nessun invio registrato finora." in page.text
    child = year.families[5].children[0]
    one = client.get(f"{ROOT}/invio", params={"anteprima": child}).text
    named = one[one.index("<p>Per ") :].split(".", 1)[0]
    assert child in named.removeprefix("<p>Per ").split(", ")
    missing = client.get(f"{ROOT}/invio", params={"anteprima": "nessuno@example.org"}).text
    assert "Nessuna e-mail del piano va a questo indirizzo" in missing
    assert app.desks.campaign.listing() == []  # the page stored nothing


def test_console_actions_change_the_campaign_as_the_cli_does(
    mailing: tuple[App, SchoolYear],
    client_for: ClientFactory,
    env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app, year = mailing
    client = client_for(app)
    csrf = sign_in(client, "anna")

    confirm = client.post(f"{ROOT}/invio/avvia", data={"csrf_token": csrf, "nome": "web"})
    assert confirm.status_code == 200 and "Conferma: avvia l'invio" in confirm.text
    assert app.desks.campaign.listing() == []  # nothing before the confirmation
    where = _post(client, csrf, "/invio/avvia", nome="web", quando="subito", conferma="si")
    assert where == f"{ROOT}/invio/web?fatto=avviato"
    _cli(env, tmp_path, monkeypatch, "start", "cli", "--at", "2026-09-01 08:00")  # = NOW
    assert _state(app, "web")[0] == "running"
    assert _state(app, "web")[2] == _state(app, "cli")[2]

    assert app.campaigns.top_up() == 6  # 3 mails of each campaign leave for the outbox
    _post(client, csrf, "/invio/web/sospendi")
    _cli(env, tmp_path, monkeypatch, "pause", "cli")
    assert _state(app, "web") == ("paused", *_state(app, "cli")[1:])
    assert _state(app, "web")[1] == {"planned": len(year.expected_pairs())}

    _post(client, csrf, "/invio/web/riprendi")
    _cli(env, tmp_path, monkeypatch, "resume", "cli")
    assert _state(app, "web")[0] == _state(app, "cli")[0] == "running"

    late = "student,S9000001,Nuovo,Arrivato,2014-01-01,,,1C,sì\n"
    late += "guardian,G9000001,Gen,Arrivato,,tardi@example.org,S9000001,,\n"
    school(app, year, late)
    _post(client, csrf, "/invio/web/estendi")
    _cli(env, tmp_path, monkeypatch, "extend", "cli")
    assert _state(app, "web")[1:] == _state(app, "cli")[1:]
    assert ("tardi@example.org", "S9000001", "planned") in _state(app, "web")[2]

    ask = client.post(f"{ROOT}/invio/web/annulla", data={"csrf_token": csrf})
    assert ask.status_code == 200 and "Conferma: annulla l'invio" in ask.text
    assert _state(app, "web")[0] == "running"  # not before the confirmation
    _post(client, csrf, "/invio/web/annulla", conferma="si")
    _cli(env, tmp_path, monkeypatch, "cancel", "cli")
    assert _state(app, "web") == ("cancelled", *_state(app, "cli")[1:])

    web, cli = _audit(app, "web"), _audit(app, "cli")
    assert [a for a, _d, _s in web] == [
        "campaign.start",
        "campaign.pause",
        "campaign.resume",
        "campaign.extend",
        "campaign.cancel",
    ]
    assert [(a, d) for a, d, _s in web] == [(a, d) for a, d, _s in cli]
    started = len(year.expected_pairs())
    assert web[0][1] == f"{started} collegamenti, inizio 1 settembre 2026 alle 08:00"
    assert {s for *_, s in web} == {"web"} and {s for *_, s in cli} == {"cli"}
    log = client.get(f"{ROOT}/attivita").text
    assert "invio di settembre annullato" in log.lower()

    refused = client.post(f"{ROOT}/invio/web/riprendi", data={"csrf_token": csrf})
    assert refused.status_code == 409 and "non è sospeso" in refused.text


def test_a_start_at_a_date_and_the_bounces_on_the_campaigns_page(
    mailing: tuple[App, SchoolYear], client_for: ClientFactory
) -> None:
    app, _year = mailing
    client = client_for(app)
    csrf = sign_in(client, "anna")
    form = {"nome": "sett", "quando": "data", "data": "01/09/2026", "ora": "7:30"}
    wrong = client.post(
        f"{ROOT}/invio/avvia", data={"csrf_token": csrf, **form, "data": "31/02/2026"}
    )
    assert wrong.status_code == 409 and "giorno (gg/mm/aaaa)" in wrong.text
    ask = client.post(f"{ROOT}/invio/avvia", data={"csrf_token": csrf, **form})
    assert "partirà l&#39;1 settembre 2026 alle 07:30" in ask.text
    _post(client, csrf, "/invio/avvia", conferma="si", **form)
    info = app.desks.campaign.status("sett").campaign
    assert info.start_at == datetime(2026, 9, 1, 5, 30, tzinfo=UTC)  # 07:30 in Rome (CEST)

    assert app.campaigns.top_up() == 3
    with app.uow() as uow:
        entry = uow.outbox.listing("pending")[0]
        uow.outbox.mark_sent(entry.id, NOW)
        record_bounce(uow, MarkBounced((entry.message_id,)), NOW)
        uow.commit()
    page = client.get(f"{ROOT}/invio/sett").text
    assert "Indirizzi non validi (" in page and "Nessuna e-mail respinta finora." not in page
    assert str(entry.recipient) in page
    assert 'href="/console/revisione/' in page and "Indirizzo non valido: " in page
    assert '<progress id="avanzamento"' in page
    listing = client.get(f"{ROOT}/invio").text
    assert "<progress" in listing and 'href="/console/invio/sett"' in listing


def test_only_administrators_run_the_mailing_and_every_post_needs_the_token(
    mailing: tuple[App, SchoolYear], client_for: ClientFactory
) -> None:
    app, _year = mailing
    app.desks.campaign.start("settembre", None, CLI)
    signed_out = client_for(app, "203.0.113.9")
    assert signed_out.get(f"{ROOT}/invio").headers["location"] == f"{ROOT}/accesso"
    answer = signed_out.post(f"{ROOT}/invio/settembre/annulla", data={"conferma": "si"})
    assert (answer.status_code, answer.headers["location"]) == (303, f"{ROOT}/accesso")
    operator = client_for(app, "203.0.113.8")
    csrf = sign_in(operator, "olga")
    assert "Invio di settembre" not in operator.get(f"{ROOT}/").text
    assert operator.get(f"{ROOT}/invio").status_code == 403
    assert operator.get(f"{ROOT}/invio/settembre").status_code == 403
    for path in ("/invio/avvia", "/invio/settembre/sospendi", "/invio/settembre/annulla"):
        data = {"csrf_token": csrf, "nome": "altro", "conferma": "si"}
        assert operator.post(ROOT + path, data=data).status_code == 403, path
    with pytest.raises(NotPermitted):
        app.desks.campaign.pause("settembre", Actor("olga", "web", "operatore"))

    admin = client_for(app)
    sign_in(admin, "anna")
    for path in ("/invio/avvia", "/invio/settembre/sospendi", "/invio/settembre/annulla"):
        data = {"nome": "altro", "conferma": "si"}
        assert admin.post(ROOT + path, data=data).status_code == 403, path
    assert [c.name for c in app.desks.campaign.listing()] == ["settembre"]
    assert app.desks.campaign.status("settembre").campaign.status == "running"


def test_a_start_with_no_register_codes_needs_the_box_ticked(
    env: dict[str, str], client_for: ClientFactory
) -> None:
    app = make_app(load_settings(None, environ=env), clock=FakeClock(NOW), directory=False)
    app.desks.staff.add("anna", "amministratore", PASSWORD, CLI)
    made_up = (
        "student,alunno-5256305,Luca,Rossi,2014-05-01,,,1A,sì\n"
        "guardian,genitore-1,Mario,Rossi,,mario.rossi@example.org,alunno-5256305,,\n"
    )
    with app.uow() as uow:
        import_records(
            uow.session,
            read_directory(
                b"role,username,first_name,last_name,"
                b"birth_date,emails,students,class,new\n" + made_up.encode()
            ),
            prune=False,
        )
        uow.commit()
    client = client_for(app)
    csrf = sign_in(client, "anna")
    page = client.get(f"{ROOT}/invio").text
    assert "senza codice del registro" in page and 'name="senza_codici"' in page
    form = {"csrf_token": csrf, "nome": "settembre", "quando": "subito", "conferma": "si"}
    refused = client.post(f"{ROOT}/invio/avvia", data=form)
    assert refused.status_code == 409
    assert "nessuno degli studenti da avvisare ha in rubrica il codice" in refused.text
    assert app.desks.campaign.listing() == []
    _post(client, csrf, "/invio/avvia", **{**form, "senza_codici": "si"})
    assert app.desks.campaign.status("settembre").counts == {"planned": 1}
