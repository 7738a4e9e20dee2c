"""Defer and remember at the terminal (issue 28, item 4), with a real Dovecot, aiosmtpd,
SQLite and PostgreSQL: a deferred request leaves `review list` until its date; an
approval with --ricorda sends the link to the sender's new address, the address survives
a re-import of the register, and the next request from it is answered with no review."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest

from credmail.samples import directory_csv
from tests.integration.test_cli import Cli, cli  # noqa: F401 - the cli fixture
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import body_text, link_in

pytestmark = pytest.mark.integration

NEW_ADDRESS = "mamma.rossi@nuovo.example.net"


def test_defer_then_remember_and_the_next_request_is_automatic(
    cli: Cli,  # noqa: F811
    dovecot: Dovecot,
    smtp: SmtpServer,
) -> None:
    cli("directory", "import", cli.csv(directory_csv(date.today())))
    dovecot.append(
        request(NEW_ADDRESS, "Richiesta credenziali studente", body="Sono la mamma di Luca Rossi.")
    )
    cli("run", "--once")
    (item,) = json.loads(cli("review", "list", "--json"))
    assert item["reasons"] == ["unknown_sender"]
    item_id = str(item["id"])

    past = cli("review", "defer", item_id, "--until", date.today().isoformat(), expect=1)
    assert "successiva a oggi" in past and "Traceback" not in past
    assert len(past.strip().splitlines()) == 1
    soon = (date.today() + timedelta(days=2)).strftime("%d/%m/%Y")
    assert "torna nella coda il" in cli("review", "defer", item_id, "--until", soon)
    assert json.loads(cli("review", "list", "--json")) == []
    (waiting,) = json.loads(cli("review", "deferred", "--json"))
    assert waiting["id"] == item["id"] and waiting["deferred_until"]
    assert "(1 deferred)" in cli("status")
    assert "Rinviata: torna (o è tornata) nella coda il" in cli("review", "show", item_id)

    refused = cli("review", "approve", item_id, "--person", "S2001", "--ricorda", expect=1)
    assert "--conferma" in refused
    done = cli("review", "approve", item_id, "--person", "S2001", "--ricorda", "--conferma")
    assert f"Indirizzo {NEW_ADDRESS} aggiunto alla rubrica di G1001" in done
    cli("run", "--once")
    (link,) = smtp.handler.parsed()
    assert link["To"] == NEW_ADDRESS and "S2001" in body_text(link)
    assert json.loads(cli("token", "check", stdin=link_in(link)))["state"] == "valid"

    cli("directory", "import", cli.csv(directory_csv(date.today())))  # the register again
    assert NEW_ADDRESS in cli("privacy", "show", NEW_ADDRESS)
    dovecot.append(request(NEW_ADDRESS, "Richiesta credenziali"))
    cli("run", "--once")
    assert json.loads(cli("review", "list", "--json")) == []
    _first, second = smtp.handler.parsed()
    assert second["To"] == NEW_ADDRESS and "G1001" in body_text(second)
