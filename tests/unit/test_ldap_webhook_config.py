"""[ldap] and [webhook]: secrets from files, encrypted transport, a bad key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from credmail.adapters.ldap_backend import LdapBackend
from credmail.adapters.webhook_backend import WebhookBackend
from credmail.config import ConfigError, Settings, load_settings
from credmail.service.link_backends import BackendKind
from tests.support.wiring import IDENTITY

SECRET = "0123456789abcdef0123456789abcdef"


def load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "credmail.toml"
    path.write_text(text)
    return load_settings(path, environ=IDENTITY)


def error_for(tmp_path: Path, text: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    return str(caught.value)


def ldap_toml(tmp_path: Path, **extra: str) -> str:
    secret = tmp_path / "ldap-bind.pw"
    secret.write_text("service-pw\n")
    values = {
        "url": '"ldaps://dc.scuola.example"',
        "bind_dn": '"cn=credmail,ou=services,dc=scuola,dc=example"',
        "bind_password_file": f'"{secret}"',
        "base_dn": '"ou=people,dc=scuola,dc=example"',
    } | extra
    return "[ldap]\n" + "".join(f"{k} = {v}\n" for k, v in values.items())


def webhook_toml(tmp_path: Path, **extra: str) -> str:
    secret = tmp_path / "webhook.secret"
    secret.write_text(SECRET + "\n")
    values = {"url": '"https://gestionale.scuola.example/credmail"', "secret_file": f'"{secret}"'}
    return "[webhook]\n" + "".join(f"{k} = {v}\n" for k, v in (values | extra).items())


def test_both_sections_are_optional() -> None:
    settings = load_settings(None, environ=IDENTITY)
    assert settings.ldap is None and settings.webhook is None


def test_ldap_reads_the_bind_password_from_its_file(tmp_path: Path) -> None:
    ldap = load(tmp_path, ldap_toml(tmp_path)).ldap
    assert ldap is not None
    assert ldap.bind_password == "service-pw"
    assert ldap.user_filter == "(uid={username})"
    assert ldap.mode == "openldap"
    assert ldap.password_min_length == 12
    assert "service-pw" not in repr(LdapBackend.from_settings(ldap))


def test_ldap_backend_from_settings_carries_the_policy(tmp_path: Path) -> None:
    ldap = load(tmp_path, ldap_toml(tmp_path, password_min_length="16")).ldap
    assert ldap is not None
    backend = LdapBackend.from_settings(ldap)
    assert backend.kind is BackendKind.LDAP and backend.needs_password
    assert backend.policy.min_length == 16
    assert "qwerty" in backend.policy.common


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"colour": '"blue"'}, "ldap.colour: unknown key"),
        ({"url": '"http://dc.scuola.example"'}, "ldap: url must start with ldaps:// or ldap://"),
        ({"url": '"ldap://dc.scuola.example"'}, "ldap: url: passwords travel to the directory"),
        ({"user_filter": '"(uid=mrossi)"'}, "ldap: user_filter must contain {username}"),
        ({"user_filter": '"uid={username}"'}, "ldap: user_filter must be an LDAP filter"),
        ({"mode": '"novell"'}, "ldap.mode: Input should be 'openldap' or 'active_directory'"),
        ({"password_min_length": "6"}, "ldap.password_min_length: Input should be greater"),
        ({"bind_password_file": '"/nonexistent/pw"'}, "ldap: bind_password_file: cannot read"),
    ],
)
def test_ldap_bad_values_are_named(tmp_path: Path, extra: dict[str, str], message: str) -> None:
    assert error_for(tmp_path, ldap_toml(tmp_path, **extra)).startswith(message)


def test_ldap_required_keys_are_named(tmp_path: Path) -> None:
    error = error_for(tmp_path, '[ldap]\nurl = "ldaps://dc.scuola.example"\n')
    assert "ldap.bind_dn: required" in error and "ldap.base_dn: required" in error


def test_ldap_without_a_bind_password_is_refused(tmp_path: Path) -> None:
    text = ldap_toml(tmp_path).replace("bind_password_file", "# bind_password_file")
    assert error_for(tmp_path, text) == "ldap: bind_password_file (or bind_password) is required"


def test_ldap_placeholder_password_in_the_file_is_refused(tmp_path: Path) -> None:
    text = ldap_toml(tmp_path)
    (tmp_path / "ldap-bind.pw").write_text("changeme\n")
    assert "bind_password is a placeholder" in error_for(tmp_path, text)


def test_ldap_plain_url_only_to_loopback_or_with_start_tls(tmp_path: Path) -> None:
    assert load(tmp_path, ldap_toml(tmp_path, url='"ldap://127.0.0.1:3890"')).ldap is not None
    settings = load(tmp_path, ldap_toml(tmp_path, url='"ldap://dc.x"', start_tls="true"))
    assert settings.ldap is not None and settings.ldap.start_tls


def test_active_directory_needs_ldaps(tmp_path: Path) -> None:
    text = ldap_toml(tmp_path, url='"ldap://127.0.0.1:389"', mode='"active_directory"')
    assert "unicodePwd, which needs ldaps://" in error_for(tmp_path, text)
    ad = load(tmp_path, ldap_toml(tmp_path, mode='"active_directory"')).ldap
    assert ad is not None and ad.mode == "active_directory"


def test_webhook_reads_the_secret_from_its_file(tmp_path: Path) -> None:
    webhook = load(tmp_path, webhook_toml(tmp_path)).webhook
    assert webhook is not None
    assert webhook.secret == SECRET
    assert (webhook.timeout_seconds, webhook.retries) == (5, 2)
    backend = WebhookBackend.from_settings(webhook)
    assert backend.kind is BackendKind.WEBHOOK and not backend.needs_password
    assert SECRET not in repr(backend)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"colour": '"blue"'}, "webhook.colour: unknown key"),
        ({"url": '"http://gestionale.scuola.example/x"'}, "webhook: url must start with https://"),
        ({"retries": "-1"}, "webhook.retries: Input should be greater than or equal to 0"),
        ({"timeout_seconds": "0"}, "webhook.timeout_seconds: Input should be greater than 0"),
        ({"secret_file": '"/nonexistent/s"'}, "webhook: secret_file: cannot read"),
    ],
)
def test_webhook_bad_values_are_named(tmp_path: Path, extra: dict[str, str], message: str) -> None:
    assert error_for(tmp_path, webhook_toml(tmp_path, **extra)).startswith(message)


def test_webhook_short_or_missing_secret_is_refused(tmp_path: Path) -> None:
    text = webhook_toml(tmp_path)
    (tmp_path / "webhook.secret").write_text("short\n")
    assert "at least 32 characters" in error_for(tmp_path, text)
    no_secret = '[webhook]\nurl = "https://gestionale.scuola.example/x"\n'
    assert "secret_file (or secret) is required" in error_for(tmp_path, no_secret)


def test_webhook_plain_http_only_to_loopback(tmp_path: Path) -> None:
    text = webhook_toml(tmp_path, url='"http://127.0.0.1:8099/hook"')
    assert load(tmp_path, text).webhook is not None


@pytest.mark.parametrize("backend", ["ldap", "webhook"])
def test_links_backend_needs_its_section(tmp_path: Path, backend: str) -> None:
    error = error_for(tmp_path, f'[links]\nbackend = "{backend}"\n')
    assert error == f"links.backend = '{backend}' needs a [{backend}] section"


def test_bootstrap_builds_the_chosen_backend_from_the_whole_settings(tmp_path: Path) -> None:
    from credmail.bootstrap import make_link_backend

    ldap = load(tmp_path, '[links]\nbackend = "ldap"\n' + ldap_toml(tmp_path))
    webhook = load(tmp_path, '[links]\nbackend = "webhook"\n' + webhook_toml(tmp_path))
    assert isinstance(make_link_backend(ldap), LdapBackend)
    assert isinstance(make_link_backend(webhook), WebhookBackend)
    assert make_link_backend(webhook).url == "https://gestionale.scuola.example/credmail"  # type: ignore[attr-defined]


def webhook(**hook: str) -> dict[str, str]:
    values = {"url": "https://scuola.example/hook", "secret": SECRET, **hook}
    return {
        **IDENTITY,
        "CREDMAIL_LINKS__BACKEND": "webhook",
        **{f"CREDMAIL_WEBHOOK__{k.upper()}": v for k, v in values.items()},
    }


def test_claim_seconds_must_outlast_the_webhooks_worst_case() -> None:
    env = webhook(timeout_seconds="30", retries="3", retry_backoff_seconds="2")
    with pytest.raises(ConfigError) as caught:  # 4 x 30 s + 2 + 4 + 8 s = 134 s > 120 s
        load_settings(None, environ=env)
    message = str(caught.value)
    assert message.startswith("web.claim_seconds (120) must be longer than the webhook's")
    assert "webhook.retries" in message and "webhook.timeout_seconds" in message
    assert "(134 s)" in message
    longer = load_settings(None, environ=env | {"CREDMAIL_WEB__CLAIM_SECONDS": "135"})
    assert longer.web.claim_seconds == 135
    assert load_settings(None, environ=webhook()).web.claim_seconds == 120  # 3 x 5 s + 1.5 s
