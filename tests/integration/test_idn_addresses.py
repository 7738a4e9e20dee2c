"""An address with an internationalized domain, end to end (real Dovecot, aiosmtpd, SQLite
and PostgreSQL): a request from `anna@xn--strae-oqa.de` finds the teacher the school
imported as `anna@straße.de`, and the link leaves with the domain in A-labels, in the SMTP
envelope and in the To field (never an encoded-word)."""

from __future__ import annotations

from datetime import date

import pytest

from credmail.adapters.db.directory_import import import_records
from credmail.entrypoints.daemon import run_once
from credmail.service.directory_csv import read_directory
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import body_text, link_in, make_app, server_settings
from tests.unit.test_thread_headers import field_lines

pytestmark = pytest.mark.integration

DIRECTORY = (
    "role,username,first_name,last_name,birth_date,emails,students,class\n"
    "teacher,T9001,Anna,Weiß,,anna@straße.de,,\n"
    "teacher,T9002,Bruno,Strasser,,anna@strasse.de,,\n"  # IDNA 2003 gave both one key
).encode()


def test_a_request_in_a_label_form_finds_the_person_imported_with_u_labels(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url), directory=False)
    with app.uow() as uow:
        import_records(uow.session, read_directory(DIRECTORY, date.today()), prune=False)
        uow.commit()
    dovecot.append(request("Anna Weiß <anna@xn--strae-oqa.de>", "Richiesta credenziali"))

    result = run_once(app)

    assert result["sent"] == 1
    ((envelope_from, recipients, content),) = smtp.handler.messages
    assert recipients == ["anna@xn--strae-oqa.de"]
    assert field_lines(content, b"To") == [b"To: anna@xn--strae-oqa.de"]
    (reply,) = smtp.handler.parsed()
    assert "Gentile Anna Weiß" in body_text(reply)
    assert link_in(reply).startswith("https://registro.istitutostanga.edu.it/reset/")
    assert envelope_from == "segreteria@istitutostanga.edu.it"
