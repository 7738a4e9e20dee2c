"""Fixtures for OAuth2 tests (imported by the test modules that use them): the tests' own
authorization server, a Dovecot with the oauth2 passdb, aiosmtpd accepting XOAUTH2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.oauth_server import OAuthServer, OAuthSmtpHandler, oauth_env
from tests.support.servers import IMAP_USER, Dovecot, SmtpServer, make_certificate
from tests.support.wiring import server_env


@pytest.fixture(scope="module")
def oauth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OAuthServer]:
    directory = tmp_path_factory.mktemp("oauth")
    make_certificate(directory)
    server = OAuthServer(mailbox=IMAP_USER, certificate=directory / "cert.pem").start()
    yield server
    server.stop()


@pytest.fixture
def oauth(oauth_server: OAuthServer) -> OAuthServer:
    oauth_server.fail_with, oauth_server.delay, oauth_server.lifetime = None, 0.0, 3600
    oauth_server.device_approved, oauth_server.on_introspect = True, None
    oauth_server.strict_rotation = False
    oauth_server.token_requests.clear()
    return oauth_server


@pytest.fixture(scope="module")
def oauth_dovecot(oauth_server: OAuthServer) -> Iterator[Dovecot]:
    server = Dovecot(oauth_introspection_url=oauth_server.url + "/introspect").start()
    yield server
    server.cleanup()


@pytest.fixture
def mailbox(oauth_dovecot: Dovecot) -> Dovecot:
    oauth_dovecot.reset_mailbox()
    return oauth_dovecot


@pytest.fixture
def xoauth_smtp(oauth: OAuthServer, oauth_dovecot: Dovecot) -> Iterator[SmtpServer]:
    server = SmtpServer(handler=OAuthSmtpHandler(oauth), certificate=oauth_dovecot.ca_file)
    server.start()
    yield server
    server.stop()


def signed_in_env(
    flow: str, mailbox: Dovecot, smtp: SmtpServer, oauth: OAuthServer, db_url: str, tmp: Path
) -> dict[str, str]:
    """Everything credmail needs to reach the test servers, signing in with OAuth2."""
    env = server_env(mailbox, smtp, db_url)
    del env["CREDMAIL_MAILBOX__PASSWORD"]
    env |= {
        "CREDMAIL_SMTP__SECURITY": "starttls",
        "CREDMAIL_SMTP__CA_FILE": str(mailbox.ca_file),
        "CREDMAIL_SMTP__USERNAME": IMAP_USER,
    }
    return env | oauth_env(oauth, flow, tmp)
