"""Settings: strict keys, clear errors naming the key, env overrides, secret files."""

from __future__ import annotations

from pathlib import Path

import pytest

from credmail.cli import main
from credmail.config import ConfigError, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "credmail.toml"
    path.write_text(text)
    return path


def error_for(tmp_path: Path, text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings(write(tmp_path, text), environ=env or {})
    return str(caught.value)


def test_defaults_are_valid_without_a_file() -> None:
    settings = load_settings(None, environ={})
    assert settings.mailbox.folder == "INBOX"
    assert settings.mailbox.folders.answered == "Credenziali/Evase"
    assert settings.mailbox.process_existing is False
    assert settings.links.ttl_minutes == 60
    assert settings.database.url.startswith("sqlite:///")


def test_unknown_key_is_named(tmp_path: Path) -> None:
    assert error_for(tmp_path, '[mailbox]\nhots = "x"\n') == "mailbox.hots: unknown key"


def test_unknown_section_is_named(tmp_path: Path) -> None:
    assert error_for(tmp_path, "[mailboxes]\n") == "mailboxes: unknown key"


def test_bad_type_is_named(tmp_path: Path) -> None:
    assert error_for(tmp_path, '[smtp]\nport = "abc"\n').startswith("smtp.port: ")


def test_plain_imap_is_refused_toward_a_remote_host(tmp_path: Path) -> None:
    message = error_for(tmp_path, '[mailbox]\nhost = "imap.example.org"\nsecurity = "none"\n')
    assert message.startswith("mailbox: security = 'none' is allowed only toward a loopback")


def test_plain_imap_is_allowed_on_loopback(tmp_path: Path) -> None:
    path = write(tmp_path, '[mailbox]\nhost = "127.0.0.1"\nsecurity = "none"\n')
    assert load_settings(path, environ={}).mailbox.effective_port == 143


def test_placeholder_secret_is_refused(tmp_path: Path) -> None:
    assert "placeholder" in error_for(tmp_path, '[mailbox]\npassword = "changeme"\n')


def test_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "imap.secret"
    secret.write_text("s3cr3t-value\n")
    path = write(tmp_path, f'[mailbox]\npassword_file = "{secret}"\n')
    assert load_settings(path, environ={}).mailbox.password == "s3cr3t-value"


def test_missing_secret_file_is_named(tmp_path: Path) -> None:
    message = error_for(tmp_path, f'[smtp]\npassword_file = "{tmp_path}/nope"\n')
    assert message.startswith("smtp: password_file: cannot read")


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '[mailbox]\nhost = "imap.example.org"\n')
    env = {"CREDMAIL_MAILBOX__HOST": "imap2.example.org", "CREDMAIL_LINKS__TTL_MINUTES": "30"}
    settings = load_settings(path, environ=env)
    assert settings.mailbox.host == "imap2.example.org"
    assert settings.links.ttl_minutes == 30


def test_environment_lists(tmp_path: Path) -> None:
    env = {"CREDMAIL_CLASSIFY__ADULT_PHRASES": '["password registro"]'}
    assert load_settings(None, environ=env).classify.adult_phrases == ("password registro",)


def test_unknown_environment_key_is_named() -> None:
    with pytest.raises(ConfigError, match=r"^mailbox\.hots: unknown key$"):
        load_settings(None, environ={"CREDMAIL_MAILBOX__HOTS": "x"})


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    assert "invalid TOML" in error_for(tmp_path, "[mailbox\n")


def test_link_base_url_must_be_https(tmp_path: Path) -> None:
    message = error_for(tmp_path, '[links]\nbase_url = "http://registro.example.org"\n')
    assert message == "links: base_url must start with https://"


def test_cli_exits_2_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, '[mailbox]\nhost = "127.0.0.1"\nport = 1\nbogus = 1\n')
    monkeypatch.delenv("CREDMAIL_CONFIG", raising=False)
    assert main(["--config", str(path), "run", "--once"]) == 2
    assert "mailbox.bogus: unknown key" in capsys.readouterr().err


def test_example_config_is_valid(tmp_path: Path) -> None:
    example = Path(__file__).parents[2] / "config" / "credmail.example.toml"
    secret = tmp_path / "secret"
    secret.write_text("real-secret\n")
    env = {
        "CREDMAIL_MAILBOX__PASSWORD_FILE": str(secret),
        "CREDMAIL_SMTP__PASSWORD_FILE": str(secret),
    }
    settings = load_settings(example, environ=env)
    assert settings.mailbox.security == "tls"
    assert settings.smtp.password == "real-secret"
