"""The daemon signed in with OAuth2, as a sysadmin runs it: access tokens that expire every
few seconds, a permanent sign-in failure, a SIGKILL right after a refresh-token rotation."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from credmail.adapters.db.oauth_store import OAuthStore, load_key
from tests.e2e.test_crash import directory, request
from tests.e2e.test_liveness import NotifySocket
from tests.support.daemon import Daemon, wait_for
from tests.support.oauth_fixtures import signed_in_env
from tests.support.oauth_server import OAuthServer
from tests.support.servers import Dovecot, SmtpServer

pytestmark = pytest.mark.e2e


def prepared(
    flow: str,
    mailbox: Dovecot,
    smtp: SmtpServer,
    oauth: OAuthServer,
    url: str,
    tmp: Path,
    extra_env: dict[str, str] | None = None,
    **settings: str,
) -> tuple[Daemon, OAuthStore]:
    """A daemon signing in with `flow`, a directory of teachers and, for the refresh-token
    flow, a stored refresh token (as `credmail oauth login` leaves it)."""
    env = signed_in_env(flow, mailbox, smtp, oauth, url, tmp)
    env |= {f"CREDMAIL_{key.upper()}": value for key, value in settings.items()}
    daemon = Daemon(tmp, env, extra_env)
    assert daemon.cli("directory", "import", str(directory(tmp / "dir.csv"))).returncode == 0
    store = OAuthStore(create_engine(url), load_key(tmp / "token.key", create=True))
    store.save_refresh_token(oauth.grant_refresh_token())
    return daemon, store


def replies(smtp: SmtpServer) -> list[str]:
    return [str(msg["In-Reply-To"]) for msg in smtp.handler.parsed()]


@pytest.mark.parametrize("flow", ["generic", "microsoft", "google"])
def test_tokens_expiring_every_few_seconds_lose_and_repeat_nothing(
    flow: str,
    mailbox: Dovecot,
    xoauth_smtp: SmtpServer,
    oauth: OAuthServer,
    sqlite_url: str,
    tmp_path: Path,
) -> None:
    oauth.lifetime = 3  # renewed after about 2.4 s
    daemon, store = prepared(flow, mailbox, xoauth_smtp, oauth, sqlite_url, tmp_path)
    first_token = store.refresh_token()
    for i in range(15):  # a backlog
        mailbox.append(request(i))
    daemon.start()
    try:
        assert wait_for(lambda: len(xoauth_smtp.handler.messages) == 15, 60), daemon.text()
        time.sleep(7)  # idle through two token lifetimes
        for i in range(15, 30):  # and mail arriving while it idles
            mailbox.append(request(i))
            time.sleep(0.4)
        assert wait_for(lambda: len(xoauth_smtp.handler.messages) == 30, 60), daemon.text()
        time.sleep(3)  # anything answered twice would show now
        assert daemon.stop() == 0
    finally:
        daemon.kill()
    answered = replies(xoauth_smtp)
    assert len(answered) == len(set(answered)) == 30
    assert len(daemon.events("imap.token_renewal")) >= 2
    assert not daemon.events("sync.failed")
    assert not daemon.events("oauth.needs_reauthorisation")
    assert oauth.requests_since(0) >= 4
    if flow == "generic":
        assert store.refresh_token() != first_token  # rotated and saved along the way
    assert mailbox.folder_messages("INBOX") == {}
    assert "at-" not in daemon.text() and "rt-" not in daemon.text()


def test_invalid_grant_keeps_the_daemon_up_and_says_what_to_run(
    mailbox: Dovecot, xoauth_smtp: SmtpServer, oauth: OAuthServer, sqlite_url: str, tmp_path: Path
) -> None:
    notify = NotifySocket(tmp_path / "notify.sock")
    daemon, _store = prepared(
        "generic",
        mailbox,
        xoauth_smtp,
        oauth,
        sqlite_url,
        tmp_path,
        {"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000"},
        oauth__retry_minutes="0.05",  # 3 seconds instead of 10 minutes
    )
    oauth.fail_with, oauth.error_description = "invalid_grant", "AADSTS700082: expired"
    mailbox.append(request(0))
    started = time.time()
    daemon.start()
    try:
        notify.collect(12)
        elapsed = time.time() - started
        assert daemon.process is not None and daemon.process.poll() is None
        status = daemon.cli("status")
        assert daemon.stop() == 0
    finally:
        daemon.kill()
        notify.sock.close()
    assert status.returncode != 0
    assert "needs re-authorisation" in status.stdout and "credmail oauth login" in status.stdout
    (line,) = daemon.events("oauth.needs_reauthorisation")
    assert line["code"] == "AADSTS700082" and "credmail oauth login" in line["fix"]
    assert 2 <= oauth.requests_since(started) <= elapsed / 3 + 1  # once per retry period
    statuses = [text for _at, text in notify.received if text.startswith("STATUS=")]
    assert statuses and "needs re-authorisation" in statuses[0]
    assert notify.since(0, "WATCHDOG=1") >= 4  # still fed
    assert xoauth_smtp.handler.messages == []
    assert "rt-" not in daemon.text() and "at-" not in daemon.text()


def test_rotated_refresh_token_survives_sigkill_right_after_the_refresh(
    mailbox: Dovecot, xoauth_smtp: SmtpServer, oauth: OAuthServer, sqlite_url: str, tmp_path: Path
) -> None:
    oauth.lifetime, oauth.strict_rotation = 2, True  # an unsaved rotation locks us out
    daemon, store = prepared("generic", mailbox, xoauth_smtp, oauth, sqlite_url, tmp_path)
    killed: list[int] = []

    def kill_now() -> None:
        if daemon.process is not None and daemon.process.pid not in killed:
            killed.append(daemon.process.pid)
            os.kill(daemon.process.pid, signal.SIGKILL)

    for round_ in range(3):
        oauth.on_introspect = kill_now  # the new token is in use: the refresh is over
        daemon.start()
        assert wait_for(lambda: len(killed) == round_ + 1, 30)  # noqa: B023 - waited here
        assert daemon.process is not None
        daemon.process.wait(timeout=10)
        oauth.on_introspect = None
        mailbox.append(request(round_))
        daemon.start()
        try:
            sent = round_ + 1
            assert wait_for(lambda: len(xoauth_smtp.handler.messages) == sent, 30), (  # noqa: B023
                daemon.text()
            )
            assert daemon.stop() == 0
        finally:
            daemon.kill()
    assert not daemon.events("oauth.needs_reauthorisation")
    assert store.refresh_token() in oauth.refresh
