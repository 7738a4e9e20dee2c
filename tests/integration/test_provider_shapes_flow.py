"""Issue 12 end to end: provider-shaped mail through the real Dovecot, the daemon's
pipeline, real aiosmtpd and SQLite and PostgreSQL. ARC keys are generated here and
served by an injected DNS lookup."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select

from credmail.adapters.db.directory_import import import_records
from credmail.adapters.db.engine import upgrade
from credmail.adapters.db.models import LedgerRow, OutboxRow, ReviewRow
from credmail.adapters.dkim_verifier import sender_authenticator as SenderAuthenticator
from credmail.bootstrap import App, bootstrap
from credmail.core.parse import parse_message
from credmail.entrypoints.daemon import run_once
from credmail.samples import AUTHSERV_ID, directory_csv
from credmail.service.directory_csv import read_directory
from tests.support import provider_mail as pm
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import STARTED, server_settings

pytestmark = pytest.mark.integration

ANSWERED, REVIEW, AUTOMATED, INBOX = (
    "Credenziali/Evase",
    "Credenziali/Revisione",
    "Credenziali/Scartate",
    "INBOX",
)
Keys = dict[str, tuple[bytes, bytes]]


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    folder = tmp_path_factory.mktemp("arc-e2e")
    return {name: pm.generate_key(folder, name) for name in ("ms", "evil")}


def app_for(dovecot: Dovecot, smtp: SmtpServer, db_url: str, keys: Keys) -> App:
    settings = server_settings(dovecot, smtp, db_url)
    dns = pm.dns_for({"arc._domainkey.microsoft.com": keys["ms"][1]})
    authenticator = SenderAuthenticator(
        "dmarc_or_dkim", (AUTHSERV_ID,), dnsfunc=dns, trusted_arc_sealers=("microsoft.com",)
    )
    app = bootstrap(settings, authenticator=authenticator)
    STARTED.append(app)
    upgrade(app.engine)
    with app.uow() as uow:
        import_records(uow.session, read_directory(directory_csv(date.today())), prune=False)
        uow.commit()
    return app


def trusted(domain: str = "example.org") -> tuple[tuple[str, str], ...]:
    return (("Authentication-Results", f"{AUTHSERV_ID}; dmarc=pass header.from={domain}"),)


M365_PASS = "spf=pass smtp.mailfrom=example.org; dmarc=pass action=none header.from=example.org"


def shapes(keys: Keys) -> dict[str, tuple[bytes, str]]:
    """name -> (message, the folder it must end in)."""
    teacher = pm.plain(
        sender="Giovanna Esposito <g.esposito@example.org>", msgid="<m365-arc@example.org>"
    )
    m365_arc = pm.exchange_unattributed(
        pm.arc_seal(teacher, "microsoft.com", "mx.microsoft.com 1", M365_PASS, keys["ms"][0]),
        M365_PASS,
    )
    staff = pm.plain(sender="franco.gallo@example.org", msgid="<m365-noarc@example.org>")
    davide = pm.plain(sender="davide.neri@example.org", msgid="<forged-arc@example.org>")
    forged = pm.arc_seal(davide, "microsoft.com", "mx.microsoft.com", M365_PASS, keys["evil"][0])
    html = "<div>Buongiorno, il link per <b>Giulia</b> grazie</div>"
    return {
        "tagged": (
            pm.plain("[EXTERNAL] Richiesta credenziali", extra=trusted(), msgid="<tag@ex.org>"),
            ANSWERED,
        ),
        "spam_tag": (
            pm.plain("***SPAM*** Richiesta credenziali", extra=trusted(), msgid="<spam1@ex.org>"),
            REVIEW,
        ),
        "spam_flag": (
            pm.plain(extra=(*trusted(), ("X-Spam-Flag", "YES")), msgid="<spam2@ex.org>"),
            REVIEW,
        ),
        "pec_envelope": (pm.pec_envelope(inner_sender="mario.rossi@example.org"), REVIEW),
        "pec_receipt": (pm.pec_receipt("AVVENUTA CONSEGNA", "avvenuta-consegna"), AUTOMATED),
        "m365_arc": (m365_arc, ANSWERED),
        "m365_no_arc": (pm.exchange_unattributed(staff, M365_PASS), REVIEW),
        "forged_arc": (forged, REVIEW),
        "html_only": (
            pm.html_only(html, msgid="<html@ex.org>").replace(
                b"From:", b"Authentication-Results: " + trusted()[0][1].encode() + b"\r\nFrom:", 1
            ),
            ANSWERED,
        ),
        "quoted": (
            pm.family(pm.QUOTED_THREADS["gmail_it"][0], msgid="<quoted@ex.org>").replace(
                b"From:", b"Authentication-Results: " + trusted()[0][1].encode() + b"\r\nFrom:", 1
            ),
            REVIEW,
        ),
    }


def locations(dovecot: Dovecot) -> dict[str, str]:
    where = {}
    for folder in (ANSWERED, REVIEW, AUTOMATED, INBOX):
        for data in dovecot.folder_messages(folder).values():
            where[parse_message(data[b"BODY[]"]).message_id or ""] = folder
    return where


def test_provider_shapes_end_to_end(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, keys: Keys
) -> None:
    app = app_for(dovecot, smtp, db_url, keys)
    cases = shapes(keys)
    ids: dict[str, str] = {}
    for name, (raw, _folder) in cases.items():
        ids[name] = parse_message(raw).message_id or ""
        dovecot.append(raw)

    run_once(app)

    where = locations(dovecot)
    assert {name: where[ids[name] or ""] for name in cases} == {
        name: folder for name, (_raw, folder) in cases.items()
    }
    sent = {str(m["In-Reply-To"]).strip(): m for m in smtp.handler.parsed()}
    assert set(sent) == {ids["tagged"], ids["m365_arc"], ids["html_only"]}
    assert str(sent[ids["m365_arc"]]["To"]) == "g.esposito@example.org"
    body = sent[ids["html_only"]].get_body()
    assert body is not None and "S2002" in body.get_content()  # Giulia, from the HTML
    recipients = {r for _f, rcpts, _raw in smtp.handler.messages for r in rcpts}
    assert not any("pec" in r for r in recipients)

    reasons = {item.message_id: set(item.reasons) for item in app.review.pending()}
    assert "spam_flagged" in reasons[ids["spam_tag"]]
    assert "spam_flagged" in reasons[ids["spam_flag"]]
    assert "pec_envelope" in reasons[ids["pec_envelope"]]
    assert {"auth_results_unattributed", "unauthenticated_sender"} <= reasons[ids["m365_no_arc"]]
    assert "unauthenticated_sender" in reasons[ids["forged_arc"]]
    assert reasons[ids["quoted"]] == {"ambiguous_student"}
    pec_item = next(i for i in app.review.pending() if i.message_id == ids["pec_envelope"])
    shown = app.review.show(pec_item.id)
    assert shown.headers["PEC-From"] == "mario.rossi@example.org"
    assert "padre di Luca" in shown.text
    assert [c.person.username for c in shown.people] == ["G1001"]  # the original's sender

    # 5. the reply to the tagged request bounces; someone else's bounce is left alone
    reply_id = str(sent[ids["tagged"]]["Message-ID"]).strip()
    dovecot.append(pm.dsn_exchange(reply_id))
    dovecot.append(pm.dsn_postfix("<someone-else@example.org>"))
    run_once(app)

    where = locations(dovecot)
    assert where["<e7b1f0c2-ndr@AM0PR01MB1234.eurprd01.prod.exchangelabs.com>"] == AUTOMATED
    assert where["<20260902060001.4F1@mail.istitutostanga.edu.it>"] == INBOX
    with app.uow() as uow:
        row = uow.session.scalars(select(OutboxRow).where(OutboxRow.message_id == reply_id)).one()
        assert row.status == "bounced"
        request = uow.session.scalars(
            select(LedgerRow).where(LedgerRow.message_id == ids["tagged"])
        ).one()
        (item,) = [i for i in uow.review.pending() if "reply_bounced" in i.reasons]
        bounced = uow.session.get(ReviewRow, item.id)
        assert bounced is not None
        assert bounced.ledger_id == request.id == row.ledger_id
        assert item.message_id == reply_id and item.raw is None

    # the same report again changes nothing
    dovecot.append(pm.dsn_exchange(reply_id).replace(b"e7b1f0c2", b"e7b1f0c3"))
    run_once(app)
    with app.uow() as uow:
        items = [i for i in uow.review.pending() if "reply_bounced" in i.reasons]
    assert len(items) == 1


def test_bounced_replies_can_be_listed() -> None:
    """`outbox list --status bounced` is accepted by the CLI parser."""
    from credmail.entrypoints.cli import _parser

    assert _parser().parse_args(["outbox", "list", "--status", "bounced"]).status == "bounced"


def test_stripped_gateway_tags_are_recorded_in_the_log(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str, keys: Keys
) -> None:
    from structlog.testing import capture_logs

    app = app_for(dovecot, smtp, sqlite_url, keys)
    dovecot.append(pm.plain("[EXT] [EXTERNAL] Richiesta credenziali", extra=trusted()))
    with capture_logs() as logs:
        run_once(app)
    (handled,) = [e for e in logs if e["event"] == "message.handled"]
    assert handled["outcome"] == "answered"
    assert handled["ignored_subject_tags"] == ["[ext]", "[external]"]
