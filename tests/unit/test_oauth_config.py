"""OAuth2 settings: every provider/flow pair names the key it misses."""

from __future__ import annotations

from pathlib import Path

import pytest

from credmail.config import ConfigError, load_settings
from tests.support.wiring import IDENTITY

EXAMPLE = Path(__file__).parents[2] / "config" / "credmail.example.toml"


def error(**keys: str) -> str:
    env = {f"CREDMAIL_{name.upper()}": value for name, value in keys.items()}
    with pytest.raises(ConfigError) as caught:
        load_settings(None, environ=IDENTITY | env)
    return str(caught.value)


def test_oauth2_sign_in_needs_an_oauth_section() -> None:
    assert error(mailbox__auth="oauth2").startswith("mailbox.auth = 'oauth2' needs an [oauth]")
    assert error(smtp__auth="oauth2").startswith("smtp.auth = 'oauth2' needs an [oauth]")


@pytest.mark.parametrize(
    ("keys", "named"),
    [
        ({"oauth__provider": "microsoft"}, "oauth: tenant_id is required"),
        ({"oauth__provider": "microsoft", "oauth__tenant_id": "t"}, "oauth: client_id is"),
        (
            {"oauth__provider": "microsoft", "oauth__tenant_id": "t", "oauth__client_id": "c"},
            "oauth: client_secret (or client_secret_file",
        ),
        (
            {
                "oauth__provider": "microsoft",
                "oauth__tenant_id": "t",
                "oauth__client_id": "c",
                "oauth__certificate_file": "/x.pem",
            },
            "oauth: certificate_thumbprint is required",
        ),
        ({"oauth__provider": "google"}, "oauth: flow = 'client_credentials' is not available"),
        (
            {"oauth__provider": "google", "oauth__flow": "service_account"},
            "oauth: service_account_file is required",
        ),
        (
            {
                "oauth__provider": "google",
                "oauth__flow": "service_account",
                "oauth__service_account_file": "/sa.json",
            },
            "oauth: subject is required",
        ),
        (
            {"oauth__provider": "generic", "oauth__flow": "refresh_token", "oauth__token_url": "u"},
            "oauth: client_id is required",
        ),
        (
            {
                "oauth__provider": "generic",
                "oauth__flow": "refresh_token",
                "oauth__token_url": "u",
                "oauth__client_id": "c",
            },
            "oauth: token_key_file is required",
        ),
        ({"oauth__provider": "microsoft", "oauth__flow": "password"}, "oauth.flow: Input should"),
        ({"oauth__provider": "yahoo"}, "oauth.provider: Input should be"),
        ({"smtp__auth": "xoauth"}, "smtp.auth: Input should be"),
        (
            {
                "oauth__provider": "microsoft",
                "oauth__tenant_id": "t",
                "oauth__client_id": "c",
                "oauth__client_secret": "changeme",
            },
            "oauth: client_secret is a placeholder",
        ),
    ],
)
def test_missing_or_wrong_keys_are_named(keys: dict[str, str], named: str) -> None:
    assert error(**keys).startswith(named)


def test_secret_file_and_provider_defaults(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-value\n")
    env = {
        "CREDMAIL_MAILBOX__AUTH": "oauth2",
        "CREDMAIL_SMTP__AUTH": "oauth2",
        "CREDMAIL_OAUTH__PROVIDER": "microsoft",
        "CREDMAIL_OAUTH__TENANT_ID": "contoso",
        "CREDMAIL_OAUTH__CLIENT_ID": "app",
        "CREDMAIL_OAUTH__CLIENT_SECRET_FILE": str(secret),
    }
    oauth = load_settings(None, environ=IDENTITY | env).oauth
    assert oauth.client_secret == "s3cr3t-value"
    assert oauth.effective_scopes == ("https://outlook.office365.com/.default",)
    assert oauth.effective_token_url == (
        "https://login.microsoftonline.com/contoso/oauth2/v2.0/token"
    )
    google = load_settings(
        None,
        environ=IDENTITY
        | {
            "CREDMAIL_OAUTH__PROVIDER": "google",
            "CREDMAIL_OAUTH__FLOW": "service_account",
            "CREDMAIL_OAUTH__SERVICE_ACCOUNT_FILE": "/sa.json",
            "CREDMAIL_OAUTH__SUBJECT": "segreteria@scuola.edu.it",
        },
    ).oauth
    assert google.effective_scopes == ("https://mail.google.com/",)


def test_the_example_file_documents_every_oauth_key() -> None:
    from credmail.config import OAuthSettings

    text = EXAMPLE.read_text()
    assert "[oauth]" in text
    for key in OAuthSettings.model_fields:
        assert f"# {key} = " in text or f"# {key}_file" in text or key == "client_secret", key
