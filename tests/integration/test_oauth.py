"""OAuth2 sign-in to real Dovecot (oauth2 passdb) and aiosmtpd (XOAUTH2), both validating
against the tests' own authorization server: msal, google-auth and the plain-HTTP flows."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import structlog
from sqlalchemy import text

from credmail.adapters.db.oauth_store import OAuthStore, load_key
from credmail.adapters.imap import ImapSource
from credmail.adapters.oauth import HttpOAuth, SignInError, TokenSource
from credmail.bootstrap import make_sender, make_source, oauth_tokens
from credmail.config import Settings, load_settings
from credmail.service.ports import OutgoingMail
from tests.support.oauth_fixtures import signed_in_env
from tests.support.oauth_server import (
    OAuthServer,
    OAuthSmtpHandler,
    client_certificate,
    oauth_env,
)
from tests.support.servers import IMAP_USER, Dovecot, SmtpServer
from tests.support.wiring import IDENTITY, make_app

pytestmark = pytest.mark.integration


def settings_for(
    flow: str, mailbox: Dovecot, smtp: SmtpServer, oauth: OAuthServer, db_url: str, tmp: Path
) -> Settings:
    return load_settings(
        None, environ=IDENTITY | signed_in_env(flow, mailbox, smtp, oauth, db_url, tmp)
    )


def sign_in_both_ways(settings: Settings, db_url: str, smtp: SmtpServer) -> None:
    app = make_app(settings, directory=False)
    tokens = oauth_tokens(settings, app.engine)
    assert tokens is not None
    source = make_source(settings, tokens)
    assert isinstance(source, ImapSource)
    try:
        assert source.select().validity > 0
    finally:
        source.close()
    mail = OutgoingMail("<m1@test>", "segreteria@istitutostanga.edu.it", "a@example.org", b"x")

    async def send() -> None:
        async with make_sender(settings, tokens).connect() as connection:
            await connection.start(mail)
            await connection.finish(mail)
        await asyncio.sleep(0.1)  # let the TLS transport finish closing before the loop ends

    asyncio.run(send())
    assert len(smtp.handler.messages) == 1
    handler = smtp.handler
    assert isinstance(handler, OAuthSmtpHandler)
    assert handler.logins == [IMAP_USER]


def test_microsoft_client_credentials_through_msal(
    mailbox: Dovecot, xoauth_smtp: SmtpServer, oauth: OAuthServer, db_url: str, tmp_path: Path
) -> None:
    settings = settings_for("microsoft", mailbox, xoauth_smtp, oauth, db_url, tmp_path)
    sign_in_both_ways(settings, db_url, xoauth_smtp)
    assert {grant for _at, grant in oauth.token_requests} == {"client_credentials"}


def test_microsoft_certificate_credential_through_msal(
    mailbox: Dovecot, oauth: OAuthServer, sqlite_url: str, tmp_path: Path
) -> None:
    path, thumbprint = client_certificate(tmp_path, oauth, "cert-app")
    env = signed_in_env("microsoft", mailbox, SmtpServer(port=25), oauth, sqlite_url, tmp_path)
    del env["CREDMAIL_OAUTH__CLIENT_SECRET"]
    env |= {
        "CREDMAIL_OAUTH__CLIENT_ID": "cert-app",
        "CREDMAIL_OAUTH__CERTIFICATE_FILE": str(path),
        "CREDMAIL_OAUTH__CERTIFICATE_THUMBPRINT": thumbprint,
    }
    settings = load_settings(None, environ=IDENTITY | env)
    app = make_app(settings, directory=False)
    tokens = oauth_tokens(settings, app.engine)
    assert tokens is not None
    assert oauth.valid(tokens.token().value) == IMAP_USER


def test_msal_reports_a_wrong_secret_as_permanent_without_echoing_it(
    mailbox: Dovecot, oauth: OAuthServer, sqlite_url: str, tmp_path: Path
) -> None:
    env = signed_in_env("microsoft", mailbox, SmtpServer(port=25), oauth, sqlite_url, tmp_path)
    env["CREDMAIL_OAUTH__CLIENT_SECRET"] = "a-wrong-secret-value"
    settings = load_settings(None, environ=IDENTITY | env)
    app = make_app(settings, directory=False)
    tokens = oauth_tokens(settings, app.engine)
    assert tokens is not None
    with structlog.testing.capture_logs() as logs, pytest.raises(SignInError) as caught:
        tokens.token()
    assert caught.value.permanent and caught.value.code == "invalid_client"
    assert "a-wrong-secret-value" not in str(caught.value) + repr(logs)
    state = OAuthStore(app.engine).state()
    assert state is not None and state.status == "needs_reauth"


def test_google_service_account_through_google_auth(
    mailbox: Dovecot, xoauth_smtp: SmtpServer, oauth: OAuthServer, db_url: str, tmp_path: Path
) -> None:
    settings = settings_for("google", mailbox, xoauth_smtp, oauth, db_url, tmp_path)
    sign_in_both_ways(settings, db_url, xoauth_smtp)
    assert {grant for _at, grant in oauth.token_requests} == {
        "urn:ietf:params:oauth:grant-type:jwt-bearer"
    }


def test_refresh_token_flow_rotates_and_keeps_the_token_encrypted(
    mailbox: Dovecot, xoauth_smtp: SmtpServer, oauth: OAuthServer, db_url: str, tmp_path: Path
) -> None:
    settings = settings_for("generic", mailbox, xoauth_smtp, oauth, db_url, tmp_path)
    key = load_key(settings.oauth.token_key_file, create=True)
    app = make_app(settings, directory=False)
    store = OAuthStore(app.engine, key)
    first = oauth.grant_refresh_token()
    store.save_refresh_token(first)
    sign_in_both_ways(settings, db_url, xoauth_smtp)
    rotated = store.refresh_token()
    assert rotated not in (None, first)
    with app.engine.connect() as conn:
        sealed = conn.execute(text("SELECT refresh_token FROM oauth_identities")).scalar()
    assert sealed and rotated not in sealed and "rt-" not in sealed


def test_device_login_stores_a_refresh_token(
    oauth: OAuthServer, sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = {"CREDMAIL_DATABASE__URL": sqlite_url} | oauth_env(oauth, "generic", tmp_path)
    settings = load_settings(None, environ=IDENTITY | env)
    key = load_key(settings.oauth.token_key_file, create=True)
    app = make_app(settings, directory=False)
    store = OAuthStore(app.engine, key)
    oauth.device_approved = False
    polls: list[float] = []

    def sleep(seconds: float) -> None:
        polls.append(seconds)
        oauth.device_approved = len(polls) >= 2  # the person signs in after the first poll

    import sys

    HttpOAuth(settings.oauth, store).device_login(sys.stdout, sleep=sleep)
    assert "ABCD-EFGH" in capsys.readouterr().out
    assert len(polls) == 2
    token = store.refresh_token()
    assert token is not None and token in oauth.refresh


def test_invalid_grant_asks_once_per_retry_period_and_logs_once(
    oauth: OAuthServer, sqlite_url: str, tmp_path: Path
) -> None:
    env = {"CREDMAIL_DATABASE__URL": sqlite_url} | oauth_env(oauth, "generic", tmp_path)
    settings = load_settings(None, environ=IDENTITY | env)
    key = load_key(settings.oauth.token_key_file, create=True)
    app = make_app(settings, directory=False)
    store = OAuthStore(app.engine, key)
    store.save_refresh_token(oauth.grant_refresh_token())
    oauth.fail_with, oauth.error_description = "invalid_grant", "AADSTS50173: revoked"
    now = [time.time()]
    tokens = TokenSource(HttpOAuth(settings.oauth, store).refresh, store, 600, lambda: now[0])
    with structlog.testing.capture_logs() as logs:
        for _second in range(60):  # one minute, a try every second
            with pytest.raises(SignInError) as caught:
                tokens.token()
            now[0] += 1
    assert len(oauth.token_requests) == 1
    assert [entry["event"] for entry in logs] == ["oauth.needs_reauthorisation"]
    assert caught.value.code == "AADSTS50173" and "credmail oauth login" in caught.value.fix
    state = store.state()
    assert state is not None and state.status == "needs_reauth"
    now[0] += 600
    oauth.fail_with = None
    store.save_refresh_token(oauth.grant_refresh_token())
    assert tokens.token().value.startswith("at-")
    state = store.state()
    assert state is not None and state.status == "ok"


def test_oauth_login_command_then_status(
    oauth: OAuthServer, sqlite_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from credmail.entrypoints.cli import main
    from tests.support.wiring import write_config

    env = (
        IDENTITY
        | {
            "CREDMAIL_DATABASE__URL": sqlite_url,
            "CREDMAIL_MAILBOX__USERNAME": IMAP_USER,
            "CREDMAIL_MAILBOX__HOST": "127.0.0.1",
            "CREDMAIL_MAILBOX__SECURITY": "none",
        }
        | oauth_env(oauth, "generic", tmp_path)
    )
    config = str(write_config(tmp_path / "credmail.toml", env))
    assert main(["--config", config, "oauth", "login"]) == 0
    out = capsys.readouterr().out
    assert "ABCD-EFGH" in out and "signed in" in out
    key = tmp_path / "token.key"
    assert key.stat().st_mode & 0o077 == 0
    app = make_app(load_settings(None, environ=IDENTITY | env), directory=False)
    token = OAuthStore(app.engine, load_key(key)).refresh_token()
    assert token is not None and token in oauth.refresh and token not in out
    OAuthStore(app.engine).record("needs_reauth", "the refresh token expired", "run it again")
    main(["--config", config, "status"])
    assert "needs re-authorisation: the refresh token expired; run it again" in (
        capsys.readouterr().out
    )
    oauth.clients.pop("credmail-app")
    try:
        assert main(["--config", config, "oauth", "login"]) == 1
    finally:
        oauth.clients["credmail-app"] = "app-secret"
    assert "invalid_client" in capsys.readouterr().err
