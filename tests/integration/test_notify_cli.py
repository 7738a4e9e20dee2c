"""`credmail notify digest [--dry-run]` and `credmail notify test` as the sysadmin runs
them: real Dovecot, aiosmtpd, SQLite and PostgreSQL."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from credmail.entrypoints.cli import main
from credmail.entrypoints.daemon import run_once
from tests.integration.test_notify import body_text
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer
from tests.support.wiring import make_app, server_env, server_settings, write_config

pytestmark = pytest.mark.integration

NOTIFY = {
    "notify__staff": '["segreteria.interna@istitutostanga.edu.it"]',
    "notify__admin": '["sistemista@istitutostanga.edu.it"]',
    "web__public_url": "https://credenziali.istitutostanga.edu.it",
}


@pytest.fixture
def configured(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    config = write_config(tmp_path / "credmail.toml", server_env(dovecot, smtp, db_url, **NOTIFY))
    for name in list(os.environ):
        if name.startswith("CREDMAIL_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CREDMAIL_CONFIG", str(config))
    return config


def command(capsys: pytest.CaptureFixture[str], *args: str, expect: int = 0) -> str:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert code == expect, err
    return out + err


def test_notify_digest_dry_run_prints_it_and_sends_nothing(
    configured: Path,
    dovecot: Dovecot,
    smtp: SmtpServer,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    app = make_app(server_settings(dovecot, smtp, db_url, **NOTIFY))
    assert command(capsys, "notify", "digest", "--dry-run") == (
        "nothing waits: no digest would be sent\n"
    )
    dovecot.append(request("sconosciuto@example.net"))
    run_once(app)
    (item,) = app.review.pending()
    out = command(capsys, "notify", "digest", "--dry-run")
    assert out.startswith(
        "To: segreteria.interna@istitutostanga.edu.it\n"
        "Subject: Da fare in segreteria: 1 richiesta da rivedere - Istituto Stanga\n\n"
        "Buongiorno,\n"
    )
    assert f"- n. {item.id}, in attesa da 0 minuti: l'indirizzo del mittente" in out
    assert f"https://credenziali.istitutostanga.edu.it/console/revisione/{item.id}" in out
    assert smtp.handler.messages == []
    assert command(capsys, "notify", "digest") == (
        "digest queued for 1 address(es); sent now (1 mail(s) left the outbox)\n"
    )
    (digest,) = smtp.handler.parsed()
    assert str(digest["To"]) == "segreteria.interna@istitutostanga.edu.it"
    assert "1 richiesta da rivedere" in str(digest["Subject"])


def test_notify_test_sends_a_test_alert_or_says_why_not(
    configured: Path,
    smtp: SmtpServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    command(capsys, "db", "upgrade")
    assert command(capsys, "notify", "test") == (
        "test alert queued for 1 address(es); sent now (1 mail(s) left the outbox)\n"
    )
    (alert,) = smtp.handler.parsed()
    assert str(alert["To"]) == "sistemista@istitutostanga.edu.it"
    assert str(alert["Subject"]) == "[credmail] Prova degli avvisi - Istituto Stanga"
    assert "gli avvisi arrivano a questo indirizzo" in body_text(alert)
    smtp.handler.refuse_with = "451 4.3.0 try later"
    out = command(capsys, "notify", "test")
    assert "not sent yet: the daemon retries it" in out
    monkeypatch.setenv("CREDMAIL_NOTIFY__ADMIN", "[]")
    assert command(capsys, "notify", "test", expect=1) == (
        "credmail: notify.admin is empty: nobody to send the test alert to\n"
    )
