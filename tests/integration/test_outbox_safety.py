"""The outbox keeps no secret on disk, sends links that live from the send, and one bad
row, one bad setting or one bad address never silently stops every family's mail."""

from __future__ import annotations

import json
import stat
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import structlog

from credmail.adapters.db.models import OutboxRow, TokenRow
from credmail.entrypoints.daemon import run_once
from credmail.logs import configure_logging
from credmail.service.links import check_token
from credmail.service.ports import OutgoingMail
from credmail.service.privacy import Retention, forget, show
from credmail.service.status import status
from tests.support.daemon import Daemon
from tests.support.requests import request
from tests.support.servers import Dovecot, SmtpServer, free_port
from tests.support.wiring import link_in, make_app, server_env, server_settings

pytestmark = pytest.mark.integration

VICTIM = "mario.rossi@example.org"


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_link_lives_from_the_send_not_from_the_request(dovecot: Dovecot, db_url: str) -> None:
    """Issue 10.2: SMTP down for longer than the link's lifetime."""
    smtp = SmtpServer(port=free_port())  # not started yet: the server is down
    clock = Clock()
    app = make_app(server_settings(dovecot, smtp, db_url, links__ttl_minutes="1"), clock=clock)
    dovecot.append(request(VICTIM))
    assert run_once(app)["retried"] == 1
    with app.uow() as uow:
        (queued,) = uow.session.query(OutboxRow).all()
        (token,) = uow.session.query(TokenRow).all()
        assert queued.raw and b"/reset/" not in queued.raw  # issue 8.5: no link in clear
        assert token.token_hash == ""
    clock.now += timedelta(minutes=70)
    smtp.start()
    try:
        assert run_once(app)["sent"] == 1
        link = link_in(smtp.handler.parsed()[0])
    finally:
        smtp.stop()
    clock.now += timedelta(seconds=50)
    with app.uow() as uow:
        assert check_token(uow, link, clock()).state == "valid"
    clock.now += timedelta(seconds=20)
    with app.uow() as uow:
        assert check_token(uow, link, clock()).state == "expired"


def test_a_mail_whose_link_was_revoked_is_not_sent(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str
) -> None:
    """A second request revokes the first link: only the newer mail leaves."""
    smtp.stop()
    clock = Clock()
    settings = server_settings(dovecot, smtp, sqlite_url, limits__account_links_per_15_minutes="5")
    app = make_app(settings, clock=clock)
    dovecot.append(request(VICTIM))
    run_once(app)
    dovecot.append(request(VICTIM, subject="Richiesta credenziali di nuovo"))
    run_once(app)
    smtp.start()
    clock.now += timedelta(hours=3)
    assert run_once(app)["sent"] == 1
    (link,) = [link_in(m) for m in smtp.handler.parsed()]
    with app.uow() as uow:
        assert check_token(uow, link, clock()).valid
        statuses = sorted(e.status for e in uow.outbox.listing(None))
    assert statuses == ["failed", "sent"]


def test_secrets_never_reach_the_database_files_and_they_are_private(
    dovecot: Dovecot, smtp: SmtpServer, tmp_path: Path
) -> None:
    """Issue 8.5: files 0600 (CLI umask), no link or verifier in the db, -wal or -shm."""
    db = tmp_path / "credmail.db"
    env = server_env(dovecot, smtp, f"sqlite:///{db}")
    daemon = Daemon(tmp_path, env)
    assert daemon.cli("db", "upgrade").returncode == 0
    daemon.import_directory()
    dovecot.append(request(VICTIM))
    result = daemon.cli("run", "--once")
    assert result.returncode == 0, result.stderr
    link = link_in(smtp.handler.parsed()[0])
    verifier = link.rsplit(".", 1)[1].encode()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("credmail.db")]
    assert "credmail.db" in {p.name for p in files}
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name
        content = path.read_bytes()
        assert verifier not in content and b"/reset/" not in content, path.name


def test_one_bad_address_does_not_hold_up_the_queue(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """Issue 8.9: aiosmtplib raises ValueError for this address; the row fails alone."""
    app = make_app(server_settings(dovecot, smtp, db_url))
    with app.uow() as uow:
        bad = OutgoingMail("<bad@credmail>", "segreteria@example.org", "a\x01b@example.org", b"x")
        uow.outbox.add(bad, "acknowledge_unknown", app.clock())
        uow.commit()
    dovecot.append(request(VICTIM))
    result = run_once(app)
    assert (result["sent"], result["failed"]) == (1, 1)
    assert [m[1] for m in smtp.handler.messages] == [[VICTIM]]
    with app.uow() as uow:
        failed = uow.outbox.listing("failed")
        report = status(uow, app.clock(), timedelta(hours=1))
    assert failed[0].last_error and "control character" in failed[0].last_error
    assert report["last_delivery_error_class"] == "ValueError"


def test_delivery_errors_keep_no_address_and_forget_clears_them(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """Issue 8.10: SMTP errors quote the address; it stays out of last_error."""
    clock = Clock()
    app = make_app(server_settings(dovecot, smtp, db_url), clock=clock)
    smtp.handler.refuse_with = f"550 5.1.1 <{VICTIM}>: no such user"
    dovecot.append(request(VICTIM))
    assert run_once(app)["failed"] == 1
    with app.uow() as uow:
        (held,) = show(uow, VICTIM, clock())["outbox"]
        assert held["last_error"] and "550" in held["last_error"]
        assert VICTIM not in held["last_error"] and "<address>" in held["last_error"]
        forget(uow, VICTIM)
        uow.commit()
    with app.uow() as uow:
        assert [e.last_error for e in uow.outbox.listing(None)] == [None]


def test_retention_clears_delivery_errors(
    dovecot: Dovecot, smtp: SmtpServer, sqlite_url: str
) -> None:
    clock = Clock()
    app = make_app(server_settings(dovecot, smtp, sqlite_url), clock=clock)
    smtp.handler.refuse_with = "550 5.1.1 no such user"
    dovecot.append(request(VICTIM))
    run_once(app)
    clock.now += timedelta(days=31)
    with app.uow() as uow:
        Retention(days=30).run(uow, clock())
        uow.commit()
    with app.uow() as uow:
        assert [e.last_error for e in uow.outbox.listing(None)] == [None]


def test_status_fails_while_replies_wait_and_logs_say_why(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 10.3."""
    configure_logging("info", "json")
    clock = Clock()
    app = make_app(server_settings(dovecot, smtp, db_url), clock=clock)
    smtp.handler.refuse_with = f"451 4.3.0 <{VICTIM}> mailbox busy"
    dovecot.append(request(VICTIM))
    assert run_once(app)["retried"] == 1
    with app.uow() as uow:
        fresh = status(uow, clock(), timedelta(hours=1), timedelta(minutes=30))
    assert fresh["healthy"] and fresh["last_delivery_error_class"] == "SMTPDataError"
    clock.now += timedelta(minutes=31)
    with app.uow() as uow:
        late = status(uow, clock(), timedelta(hours=1), timedelta(minutes=30))
    assert not late["healthy"] and late["oldest_unsent_age_seconds"] >= 31 * 60
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "{" in line]
    (not_sent,) = [e for e in events if e.get("event") == "outbox.not_sent"]
    assert not_sent["error_class"] == "SMTPDataError"
    assert "451" in not_sent["error"] and VICTIM not in json.dumps(not_sent)
    structlog.reset_defaults()


MISCONFIGURED = {
    "AUTH": {"smtp__username": "credmail", "smtp__password": "s3cret-pass"},
    "STARTTLS": {"smtp__security": "starttls"},
}


@pytest.mark.parametrize("missing", sorted(MISCONFIGURED))
def test_a_server_without_auth_pauses_delivery_once(
    dovecot: Dovecot,
    smtp: SmtpServer,
    db_url: str,
    capsys: pytest.CaptureFixture[str],
    missing: str,
) -> None:
    """Issue 10.4: a username (or STARTTLS) is required but the server offers none."""
    configure_logging("info", "json")
    app = make_app(server_settings(dovecot, smtp, db_url, **MISCONFIGURED[missing]))
    dovecot.append(request(VICTIM))
    for _ in range(3):
        assert run_once(app)["retried"] == 0
    with app.uow() as uow:
        (row,) = uow.outbox.listing("pending")
        report = status(uow, app.clock(), timedelta(hours=1))
    assert row.attempts == 0
    assert not report["healthy"] and missing in (report["delivery_paused"] or "")
    events = [json.loads(line) for line in capsys.readouterr().err.splitlines() if "{" in line]
    assert [e["event"] for e in events if e["event"].startswith("outbox.")] == ["outbox.paused"]
    with app.uow() as uow:  # what `credmail outbox retry` does
        assert uow.outbox.resume()
        uow.commit()
    fixed = make_app(server_settings(dovecot, smtp, db_url), directory=False)  # a restart
    assert run_once(fixed)["sent"] == 1
    with fixed.uow() as uow:
        assert status(uow, fixed.clock(), timedelta(hours=1))["delivery_paused"] is None
    structlog.reset_defaults()


def test_pending_review_items_have_a_total_cap_on_raw_mail(
    dovecot: Dovecot, smtp: SmtpServer, db_url: str
) -> None:
    """Issue 8.12: above the cap a new item keeps headers and the start of the text."""
    cap = 300_000
    app = make_app(server_settings(dovecot, smtp, db_url, review__max_pending_raw_bytes=str(cap)))
    body = "una riga di testo della richiesta\n" * 6000  # about 200 KB
    for sender in ("primo@example.net", "secondo@example.net", "terzo@example.net"):
        dovecot.append(request(sender, body=body))
    run_once(app)
    first, second, third = sorted(app.review.pending(), key=lambda item: item.id)
    assert first.raw and len(first.raw) > 200_000 and "raw_truncated" not in first.reasons
    for item in (second, third):
        assert item.raw and len(item.raw) < 140_000 and "raw_truncated" in item.reasons
        assert b"Subject: Richiesta credenziali" in item.raw


def test_status_command_fails_while_a_reply_waits(
    dovecot: Dovecot, smtp: SmtpServer, tmp_path: Path
) -> None:
    """Issue 10.3, as monitoring sees it: `credmail status` exits 1 and says why."""
    env = server_env(
        dovecot,
        smtp,
        f"sqlite:///{tmp_path / 'credmail.db'}",
        daemon__outbox_stale_after_seconds="10",
    )
    daemon = Daemon(tmp_path, env)
    assert daemon.cli("db", "upgrade").returncode == 0
    daemon.import_directory()
    smtp.handler.refuse_with = "451 4.3.0 try again later"
    dovecot.append(request(VICTIM))
    assert daemon.cli("run", "--once").returncode == 0
    assert daemon.cli("status").returncode == 0
    time.sleep(10.5)
    result = daemon.cli("status")
    assert result.returncode == 1
    assert "delivery FAILING" in result.stdout and "SMTPDataError" in result.stdout
